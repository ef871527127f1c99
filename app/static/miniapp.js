// PoZapisi Mini App glue: Telegram WebApp integration and htmx request headers.
// Every page works without this file (plain browser, no JavaScript): it only adds comfort.
(function () {
  "use strict";
  var tg = window.Telegram && window.Telegram.WebApp;
  var insideTelegram = !!(tg && tg.initData);
  var body = document.body;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  // htmx: the CSRF token of this session, and Telegram's signed initData so the server can
  // re-authenticate when the iframe dropped the session cookie.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) { event.detail.headers["X-CSRF-Token"] = token; }
    if (insideTelegram) { event.detail.headers["X-Telegram-Init-Data"] = tg.initData; }
  });

  // Plain form posts (htmx not loaded yet): carry the token in a hidden field.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var token = csrfToken();
    if (!token || !form || form.method.toLowerCase() !== "post" || form.querySelector('input[name="_csrf"]')) { return; }
    var input = document.createElement("input");
    input.type = "hidden"; input.name = "_csrf"; input.value = token;
    form.appendChild(input);
  }, true);

  if (!insideTelegram) { return; }

  tg.ready();
  tg.expand();
  document.documentElement.classList.add("in-telegram");

  // Sign in with the signed initData when there is no session yet.
  if (body.getAttribute("data-signed-in") === "false" && !sessionStorage.getItem("pz-auth-tried")) {
    sessionStorage.setItem("pz-auth-tried", "1");
    fetch(body.getAttribute("data-sign-in-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ init_data: tg.initData }),
      credentials: "same-origin"
    }).then(function (response) {
      if (response.ok) { window.location.reload(); }
    });
    return;
  }
  sessionStorage.removeItem("pz-auth-tried");

  function bindChrome() {
    // BackButton for navigation inside Telegram.
    if (backUrl()) { tg.BackButton.show(); } else { tg.BackButton.hide(); }

    // MainButton mirrors the page's primary action.
    var primary = document.querySelector("[data-main-button]");
    if (primary) {
      tg.MainButton.setText(primary.getAttribute("data-main-button") || primary.textContent.trim());
      tg.MainButton.show();
      primary.classList.add("tg-hidden");
    } else {
      tg.MainButton.hide();
    }
    var haptic = document.querySelector("[data-haptic]");
    if (haptic && tg.HapticFeedback) { tg.HapticFeedback.notificationOccurred(haptic.getAttribute("data-haptic")); }
  }
  function backUrl() {
    var holder = document.querySelector("[data-back-url]");
    return holder ? holder.getAttribute("data-back-url") : null;
  }
  function goBack() {
    var back = backUrl();
    if (back) { window.location.href = back; }
  }
  function pressPrimary() {
    var primary = document.querySelector("[data-main-button]");
    if (primary) { primary.click(); }
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-request-contact]");
    if (target) {
      event.preventDefault();
      tg.requestContact(function (shared, result) {
        if (!shared || !result || !result.response) { return; }
        var form = document.getElementById(target.getAttribute("data-request-contact"));
        if (!form) { return; }
        form.querySelector('input[name="contact"]').value = result.response;
        form.requestSubmit();
      });
    }
    var write = event.target.closest("[data-request-write-access]");
    if (write) {
      event.preventDefault();
      tg.requestWriteAccess(function (allowed) {
        var form = document.getElementById(write.getAttribute("data-request-write-access"));
        if (form && allowed) { form.requestSubmit(); }
      });
    }
  });

  // bound once: the handlers look up the current page's action when pressed, so a press that
  // arrives while htmx is still settling a new page is not lost
  tg.BackButton.onClick(goBack);
  tg.MainButton.onClick(pressPrimary);
  document.addEventListener("htmx:afterSettle", bindChrome);
  document.addEventListener("DOMContentLoaded", bindChrome);
  if (document.readyState !== "loading") { bindChrome(); }
})();
