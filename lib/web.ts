/**
 * The web's small text formats, shared by the client (lib/fetchData.ts), the reference forum and the
 * reports: escaping text into HTML, and reading a `Cookie` header. Pure functions; no imports.
 */

/** `text` safe inside HTML text and quoted attribute values (and XML's). */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The name=value pairs of a `Cookie` header (`"sid=abc; lang=en"`), in order; malformed pairs skipped. */
export function parseCookieHeader(header: string): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return cookies;
}
