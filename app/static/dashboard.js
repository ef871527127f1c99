// PoZapisi dashboard glue. Every page works without it: forms carry their own csrf_token field.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  // htmx requests carry the session's CSRF token in the pinned header.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) { event.detail.headers["X-CSRF-Token"] = token; }
  });

  // A select marked data-autosubmit sends its form when changed (the business switcher).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.hasAttribute && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.requestSubmit ? target.form.requestSubmit() : target.form.submit();
    }
  });

  // After an htmx swap, move focus to the first field marked invalid, so keyboard and screen
  // reader users land on what to fix.
  document.addEventListener("htmx:afterSwap", function (event) {
    var invalid = event.target.querySelector('[aria-invalid="true"]');
    if (invalid) { invalid.focus(); }
  });
})();
