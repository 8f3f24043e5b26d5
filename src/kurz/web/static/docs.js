// Starts Swagger UI (shipped with kurz) on kurz's OpenAPI document: /docs works offline.
"use strict";
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapi,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // Swagger UI's badge asks validator.swagger.io, which kurz never contacts.
  validatorUrl: null,
});
