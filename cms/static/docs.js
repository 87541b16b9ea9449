// Starts Swagger UI on the API's own spec: a file of its own, so the page needs no inline script.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
    validatorUrl: null,
    // 130 operations: every tag expanded at once is more than Swagger UI renders (it stops
    // after the first two); the tags start closed, with a filter box to find one
    docExpansion: "none",
    filter: true,
  });
});
