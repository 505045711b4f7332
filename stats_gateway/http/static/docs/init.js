// Starts Swagger UI on the spec served by this gateway. A file, not an inline script, so
// the page works under a Content-Security-Policy without 'unsafe-inline' scripts.
// validatorUrl: null keeps Swagger UI from calling its online validator.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false
  });
})();
