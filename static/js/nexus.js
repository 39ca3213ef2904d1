// Small behaviours shared by every page. No inline scripts anywhere: the CSP forbids them.
(function () {
  function cycleTheme() {
    var root = document.documentElement;
    var dark = root.dataset.theme === "dark" ||
      (root.dataset.theme === "auto" && window.matchMedia("(prefers-color-scheme: dark)").matches);
    var next = dark ? "light" : "dark";
    root.dataset.theme = next;
    localStorage.setItem("nexus-theme", next);
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-theme-toggle]")) cycleTheme();
    var toggle = event.target.closest("[data-nav-toggle]");
    if (toggle) {
      var nav = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
  });
  // A WebSocket message meant for elements only some pages have (the assistant's pending answer) comes as
  // <template data-ws-for="ID">out-of-band fragments</template>: applied where #ID exists, dropped
  // silently everywhere else, so other pages and tabs log no htmx:oobErrorNoTarget. Cancelled here, such a
  // message never reaches the ws extension's swap (nor the present-targets filter below, which only sees
  // top-level hx-swap-oob nodes).
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var message = event.detail.message;
    if (typeof message !== "string" || message.indexOf("<template data-ws-for=") !== 0) return;
    event.preventDefault();
    var holder = document.createElement("template");
    holder.innerHTML = message;
    var wrapper = holder.content.firstElementChild;
    var scope = wrapper && document.getElementById(wrapper.getAttribute("data-ws-for"));
    if (scope) htmx.swap(scope, wrapper.innerHTML, { swapStyle: "none" });
  });
  // The per-user WebSocket carries every push addressed to the user (portfolio revaluations, open orders,
  // billing status, toasts), whatever page is open. A fragment whose target this page does not show is
  // dropped before HTMX swaps it, instead of failing with htmx:oobErrorNoTarget. The body declares
  // hx-ext="ws, present-targets"; the ws extension passes each message through transformResponse (with
  // no xhr), so ordinary HTMX responses are left alone.
  function oobTargetSelector(node) {
    var spec = node.getAttribute("hx-swap-oob");
    if (spec === null) return null;
    var colon = spec.indexOf(":");
    if (spec !== "true" && colon > 0) return spec.slice(colon + 1);
    return node.id ? "#" + CSS.escape(node.id) : null;
  }
  function targetPresent(selector) {
    try { return document.querySelector(selector) !== null; } catch (error) { return false; }
  }
  htmx.defineExtension("present-targets", {
    transformResponse: function (text, xhr) {
      if (xhr) return text;
      var template = document.createElement("template");
      template.innerHTML = text;
      var dropped = false;
      Array.prototype.slice.call(template.content.children).forEach(function (node) {
        var selector = oobTargetSelector(node);
        if (selector !== null && !targetPresent(selector)) {
          node.remove();
          dropped = true;
        }
      });
      return dropped ? template.innerHTML : text;
    }
  });
  // Toasts pushed over the WebSocket land in #toasts (out-of-band swap) and fade after a while.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "toasts") {
      Array.prototype.forEach.call(target.querySelectorAll(".toast:not([data-timer])"), function (toast) {
        toast.dataset.timer = "1";
        setTimeout(function () { toast.remove(); }, 8000);
      });
    }
  });
})();
