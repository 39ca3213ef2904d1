// Alert form: show only the fields the chosen kind uses. Without JS every field shows and the server
// ignores the ones a kind does not use.
(function () {
  var FIELDS = {
    price_above: ["symbol", "threshold"],
    price_below: ["symbol", "threshold"],
    price_cross: ["symbol", "threshold"],
    percent_move: ["symbol", "threshold", "window_minutes"],
    portfolio_above: ["portfolio", "threshold"],
    portfolio_below: ["portfolio", "threshold"],
    position_pnl_above: ["portfolio", "symbol", "threshold", "pnl_unit"],
    position_pnl_below: ["portfolio", "symbol", "threshold", "pnl_unit"],
    order_filled: [],
    bot_blocked: [],
    exchange_degraded: ["venue"]
  };
  var OPTIONAL = ["symbol", "portfolio", "threshold", "pnl_unit", "window_minutes", "venue"];

  function sync(form) {
    var kind = form.querySelector("[name=kind]");
    if (!kind) return;
    var shown = FIELDS[kind.value] || OPTIONAL;
    OPTIONAL.forEach(function (name) {
      var input = form.querySelector("[name=" + name + "]");
      var wrapper = input && input.closest(".field");
      if (wrapper) wrapper.hidden = shown.indexOf(name) === -1;
    });
    var cooldown = form.querySelector("[name=cooldown_minutes]");
    var repeat = form.querySelector("[name=repeat]");
    if (cooldown && repeat) cooldown.closest(".field").hidden = !repeat.checked;
  }

  function init(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-alert-form]"), function (form) {
      sync(form);
      form.addEventListener("change", function () { sync(form); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { init(event.detail.elt); });
})();
