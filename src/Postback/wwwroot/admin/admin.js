// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Confirm destructive forms: <form data-confirm="...">, or a button with data-confirm.
  document.addEventListener("submit", function (e) {
    var submitter = e.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || e.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      e.preventDefault();
    }
  });

  // Copy buttons: <button data-copy-target="element-id">.
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      var text = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = text; }, 1500);
    });
  });

  // Live preview: re-render the preview as the order or customer type changes.
  document.querySelectorAll("form[data-live-preview]").forEach(function (form) {
    var timer;
    function refresh() {
      var params = new URLSearchParams();
      ["OrderId", "CustomerType"].forEach(function (name) {
        var input = form.elements[name];
        if (input && input.value) params.set(name, input.value);
      });
      fetch(form.getAttribute("data-live-preview") + "&" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          var current = document.getElementById("preview-result");
          if (html && current) current.outerHTML = html;
        });
    }
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 300); });
    form.addEventListener("change", refresh);
  });
})();
