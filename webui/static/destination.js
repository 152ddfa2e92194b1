// The destination picker (templates/_destination.html): only the chosen kind's target field
// is shown and posted. Loaded once per picker; the guard keeps one set of listeners.
(function () {
  "use strict";
  if (window.pbxDestination) { return; }
  window.pbxDestination = true;
  function update(picker) {
    var select = picker.querySelector("[data-dest-kind]");
    var kind = select ? select.value : "";
    picker.querySelectorAll("[data-dest-for]").forEach(function (box) {
      var on = box.getAttribute("data-dest-for").split(" ").indexOf(kind) >= 0;
      box.hidden = !on;
      box.querySelectorAll("input, select").forEach(function (el) { el.disabled = !on; });
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-dest-kind]")) {
      update(event.target.closest("[data-destination]"));
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-destination]").forEach(update);
  });
})();
