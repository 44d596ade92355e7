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
    if (!source) return;
    var label = button.textContent;
    function say(text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = label; }, 2500);
    }
    // No clipboard API on a plain-HTTP LAN address: select the text so Ctrl+C copies it.
    function selectIt() {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      say("Selected: press Ctrl+C");
    }
    if (!navigator.clipboard || !window.isSecureContext) { selectIt(); return; }
    navigator.clipboard.writeText(source.textContent).then(function () { say("Copied"); }, selectIt);
  });

  // Pending states refresh themselves: an element with data-live-while-pending is fetched
  // again every few seconds and swapped in, until it no longer says it is pending.
  document.querySelectorAll("[data-live-while-pending]").forEach(function (element) {
    var id = element.id;
    if (!id) return;
    var tries = 0;
    function poll() {
      if (++tries > 120) return;
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "poll" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
          var current = document.getElementById(id);
          if (!fresh || !current) return;
          current.replaceWith(fresh);
          if (fresh.hasAttribute("data-live-while-pending")) setTimeout(poll, 3000);
        })
        .catch(function () { setTimeout(poll, 6000); });
    }
    setTimeout(poll, 3000);
  });

  // After a failed form, the section with the error is opened and brought into view.
  var failed = document.querySelector("[data-failed-section]");
  if (failed) {
    var section = document.getElementById(failed.getAttribute("data-failed-section"));
    if (section) {
      section.querySelectorAll("details").forEach(function (d) { if (d.querySelector("[aria-invalid=true]")) d.open = true; });
      section.scrollIntoView({ block: "start" });
      var invalid = section.querySelector("[aria-invalid=true]");
      if (invalid) invalid.focus({ preventScroll: true });
    }
  }

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
