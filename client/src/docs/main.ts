/**
 * The API reference page (`GET /docs`): Swagger UI rendering the server's own `/openapi.json`.
 * Swagger UI and its styles are bundled by Vite; nothing is loaded from another host (no CDN, no web
 * fonts, and no online validator: `validatorUrl: null`).
 */
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';

SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  validatorUrl: null,
  deepLinking: true,
});
