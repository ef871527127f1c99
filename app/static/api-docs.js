// Starts Swagger UI on /schema (app/templates/api_docs.html). A file of ours, because the CSP
// allows no inline script; the document's address comes from the page, built by url_for.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    // the online validator is another origin: the badge would be an image from
    // validator.swagger.io, which the CSP refuses and policy 5.5 forbids
    validatorUrl: null,
  });
})();
