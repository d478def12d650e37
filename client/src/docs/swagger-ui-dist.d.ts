// swagger-ui-dist ships no types; this is the part of SwaggerUIBundle the docs page uses.
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  export interface SwaggerUIOptions {
    url?: string;
    dom_id?: string;
    validatorUrl?: string | null;
    deepLinking?: boolean;
    [option: string]: unknown;
  }
  export interface SwaggerUIBundle {
    (options: SwaggerUIOptions): unknown;
  }
  const SwaggerUIBundle: SwaggerUIBundle;
  export default SwaggerUIBundle;
}
