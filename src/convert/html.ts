/** HTML to plain text, for Anki exports whose fields hold HTML. */
import { decodeHTML } from 'entities';

/**
 * Line breaks and block ends become newlines, other tags go, entities are
 * decoded as a browser decodes them in text (every named entity of HTML5 and
 * numeric ones; an unknown name stays as written). `&nbsp;` becomes a plain
 * space: Anki's editor writes it for repeated spaces, and Q&A text is plain text.
 */
export function stripHtml(html: string): string {
  const text = html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(div|p|li|tr|h[1-6])\s*>/gi, '\n')
    .replace(/<(style|script)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/gi, ' ');
  return decodeHTML(text);
}
