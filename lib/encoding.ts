/**
 * Character encodings as browsers use them: decoding a page by its declared charset, and encoding what a
 * form sends in the form's charset (UTF-8, or a single-byte legacy encoding such as windows-1252).
 *
 *   decode(bytes, "text/html; charset=windows-1252");   // "Café €5"
 *   encoderFor("windows-1252")("Café €5");              // bytes, with &#NNNN; for what it cannot hold
 */

/** Decodes a body by its declared charset (header, then `<meta>` in the first 1024 bytes), as browsers do. */
export function decode(bytes: Uint8Array, contentType: string | null): string {
  return decodeAs(bytes, encodingOf(bytes, contentType));
}

/** The WHATWG name of the encoding a page is decoded with (`utf-8`, `windows-1252`, `shift_jis`...). */
export function encodingOf(bytes: Uint8Array, contentType: string | null): string {
  let label = /charset\s*=\s*["']?([\w-]+)/i.exec(contentType ?? "")?.[1];
  if (!label) {
    const head = String.fromCharCode(...bytes.subarray(0, 1024));
    label = /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(head)?.[1];
  }
  return encodingName(label ?? "utf-8") ?? "utf-8";
}

/** The WHATWG name for an encoding label, or undefined when the label names none. */
export function encodingName(label: string): string | undefined {
  try {
    return new TextDecoder(label.trim()).encoding;
  } catch {
    return undefined;
  }
}

function decodeAs(bytes: Uint8Array, encoding: string): string {
  return encoding === "windows-1252" ? decodeWindows1252(bytes) : new TextDecoder(encoding).decode(bytes);
}

// Node 20's TextDecoder decodes windows-1252 (which the labels latin1 and iso-8859-1 also mean) as
// ISO-8859-1, leaving 0x80-0x9F as control characters where a browser shows € ‚ ƒ „ … “ ” and so on.
const WINDOWS_1252_HIGH = "€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ";

function decodeWindows1252(bytes: Uint8Array): string {
  let text = "";
  for (let start = 0; start < bytes.length; start += 8192) {
    const chunk = Array.from(
      bytes.subarray(start, start + 8192),
      (b) => b >= 0x80 && b < 0xa0 ? WINDOWS_1252_HIGH.charCodeAt(b - 0x80) : b,
    );
    text += String.fromCharCode(...chunk);
  }
  return text;
}

/**
 * Encodes text in an encoding; a character it cannot hold is written as browsers write it, `&#NNNN;` (which a
 * URL then carries percent-encoded, `%26%23NNNN%3B`).
 */
export type Encoder = (text: string) => Uint8Array;

const utf8 = new TextEncoder();
const encoders = new Map<string, Encoder>();

/**
 * The encoder for a form submitted in `encoding` (a WHATWG name). UTF-16 forms are sent as UTF-8, as the
 * HTML standard says. Multi-byte legacy encodings (Shift_JIS, EUC-KR, GBK, Big5...) are not supported:
 * the error says so, rather than sending bytes a browser would not.
 */
export function encoderFor(encoding: string): Encoder {
  if (encoding === "utf-8" || encoding === "utf-16le" || encoding === "utf-16be") {
    return (text) => utf8.encode(text);
  }
  let encoder = encoders.get(encoding);
  if (!encoder) {
    encoder = singleByteEncoder(encoding);
    encoders.set(encoding, encoder);
  }
  return encoder;
}

const MULTI_BYTE = new Set(["gbk", "gb18030", "big5", "euc-jp", "iso-2022-jp", "shift_jis", "euc-kr", "replacement"]);

function singleByteEncoder(encoding: string): Encoder {
  if (MULTI_BYTE.has(encoding)) {
    throw new Error(
      `Cannot encode a form in ${encoding}: tierload encodes forms in UTF-8 and the single-byte encodings only`,
    );
  }
  const decoded = decodeAs(Uint8Array.from({ length: 256 }, (_, i) => i), encoding);
  const table = new Map<number, number>();
  [...decoded].forEach((char, byte) => {
    const codePoint = char.codePointAt(0)!;
    if (codePoint !== 0xfffd && !table.has(codePoint)) table.set(codePoint, byte);
  });
  return (text) => {
    const out: number[] = [];
    for (const char of text) {
      const codePoint = char.codePointAt(0)!;
      const byte = table.get(codePoint);
      if (byte !== undefined) out.push(byte);
      else for (const c of `&#${codePoint};`) out.push(c.charCodeAt(0));
    }
    return Uint8Array.from(out);
  };
}
