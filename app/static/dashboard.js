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

  // Live polls (app.domain.live): elements marked data-live poll with htmx. They rest while the
  // tab is hidden, and ask at once when it is shown again.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-live") && document.hidden) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) { return; }
    document.querySelectorAll("[data-live]").forEach(function (elt) { window.htmx.trigger(elt, "live"); });
  });

  // An open calendar redrawn by its poll keeps the user's place: the grid's own scroll (htmx
  // keeps the focus by id and the page's scroll), and a booking that appeared is announced.
  var redraw = null;
  function bookingIds(root) {
    var ids = {};
    if (root) {
      root.querySelectorAll("[data-booking]").forEach(function (b) { ids[b.getAttribute("data-booking")] = true; });
    }
    return ids;
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!elt || elt.id !== "calendar-poll" || !event.detail.shouldSwap) { return; }
    var body = document.getElementById("calendar-body");
    var box = body && body.querySelector(".calendar-scroll");
    redraw = {
      ids: bookingIds(body),
      left: box ? box.scrollLeft : 0,
      top: box ? box.scrollTop : 0
    };
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!redraw) { return; }
    var was = redraw;
    redraw = null;
    var body = document.getElementById("calendar-body");
    var box = body && body.querySelector(".calendar-scroll");
    if (box) { box.scrollLeft = was.left; box.scrollTop = was.top; }
    var news = document.getElementById("calendar-news");
    if (!body || !news) { return; }
    var added = [];
    body.querySelectorAll("[data-booking]").forEach(function (b) {
      if (!was.ids[b.getAttribute("data-booking")]) {
        added.push(b.textContent.replace(/\s+/g, " ").trim());
      }
    });
    if (added.length) {
      news.textContent = added.map(function (what) {
        return news.getAttribute("data-new-booking") + ": " + what;
      }).join(". ");
    }
  });

  // After an htmx swap, move focus to the first field marked invalid, so keyboard and screen
  // reader users land on what to fix.
  document.addEventListener("htmx:afterSwap", function (event) {
    var invalid = event.target.querySelector('[aria-invalid="true"]');
    if (invalid) { invalid.focus(); }
  });
})();
