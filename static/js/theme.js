// Applied before first paint so the chosen theme never flashes. Stored per browser.
(function () {
  var theme = localStorage.getItem("nexus-theme");
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
})();
