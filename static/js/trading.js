// Trading pages: show only the order-ticket fields the chosen order type uses. No inline scripts (CSP).
(function () {
  var PRICE_TYPES = ["limit", "stop_limit"];
  var TRIGGER_TYPES = ["stop_market", "stop_limit", "take_profit"];

  function fieldOf(input) { return input ? input.closest(".field") : null; }

  function syncTicket(form) {
    var type = form.querySelector("[name=type]");
    if (!type) return;
    var price = fieldOf(form.querySelector("[name=price]"));
    var trigger = fieldOf(form.querySelector("[name=stop_price]"));
    if (price) price.hidden = PRICE_TYPES.indexOf(type.value) === -1;
    if (trigger) trigger.hidden = TRIGGER_TYPES.indexOf(type.value) === -1;
  }

  // The bot form lists every strategy's parameters; show the chosen strategy's only.
  var STRATEGY_PARAMS = {
    sma_crossover: ["fast", "slow"],
    rsi_mean_reversion: ["period", "oversold", "overbought"],
    dca: ["every"]
  };

  function syncBotForm(form) {
    var strategy = form.querySelector("[name=strategy]");
    if (!strategy) return;
    Object.keys(STRATEGY_PARAMS).forEach(function (key) {
      STRATEGY_PARAMS[key].forEach(function (name) {
        var field = fieldOf(form.querySelector("[name=" + name + "]"));
        if (field) field.hidden = key !== strategy.value;
      });
    });
  }

  function syncAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-order-ticket]"), syncTicket);
    Array.prototype.forEach.call(document.querySelectorAll("[data-bot-form]"), syncBotForm);
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest("[data-order-ticket]");
    if (form && event.target.name === "type") syncTicket(form);
    var botForm = event.target.closest("[data-bot-form]");
    if (botForm && event.target.name === "strategy") syncBotForm(botForm);
  });
  document.addEventListener("DOMContentLoaded", syncAll);
  // Live updates (open orders) arrive over the page's WebSocket; mark when it is open, for people and tests.
  document.addEventListener("htmx:wsOpen", function () { document.documentElement.dataset.tradingLive = "open"; });
  document.addEventListener("htmx:wsClose", function () { document.documentElement.dataset.tradingLive = "closed"; });
  document.addEventListener("htmx:afterSwap", syncAll);
})();
