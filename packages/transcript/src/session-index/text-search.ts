/**
 * What the session index's text search means, in one place.
 *
 * A command's recorded text is *normalised*: lower-cased, every run of whitespace or control characters made one
 * space, trimmed, at most `maxIndexedChars` characters. A search is split into *terms*: words separated by
 * whitespace, or "a quoted phrase" kept whole; each is normalised the same way. A command matches when its text
 * contains every term as a substring (so `users` finds `public.users` and `DELETE FROM users`, and
 * `delete users` finds `DELETE FROM users`); a session matches when one of its commands does.
 *
 * The index keeps, per session, the trigrams (three consecutive characters) of its normalised texts, each text
 * followed by two `\n` so that every character starts a trigram: a term of three or more characters narrows the
 * candidates to sessions holding all its trigrams, a shorter one to sessions holding a trigram that starts with it.
 * Candidates are then checked against the texts themselves, so the trigrams only make the search fast.
 */

/** Characters of a command's text that are indexed and searchable. */
export const maxIndexedChars = 64 * 1024;

// Whitespace and control characters (C0, DEL, C1) fold to one space.
const foldable = /[\s\u0000-\u001f\u007f-\u009f]+/g;

export function normalizeText(text: string): string {
  const folded = text.toLowerCase().replace(foldable, ' ').trim();
  return folded.length > maxIndexedChars ? folded.slice(0, maxIndexedChars) : folded;
}

/** The search's terms, normalised, without empty ones and without repeats. */
export function searchTerms(query: string): string[] {
  const terms: string[] = [];
  for (const match of query.matchAll(/"([^"]*)"?|(\S+)/g)) {
    const term = normalizeText(match[1] ?? match[2] ?? '');
    if (term !== '' && !terms.includes(term)) terms.push(term);
  }
  // A term contained in another adds nothing: drop it (shorter terms make poorer filters).
  return terms.filter(
    (term, i) => !terms.some((other, j) => j !== i && other !== term && other.includes(term)),
  );
}

/** Does a normalised text contain every term? */
export function textMatches(text: string, terms: readonly string[]): boolean {
  for (const term of terms) if (!text.includes(term)) return false;
  return true;
}

/** The end of every indexed text: a character normalised text never holds, so no term contains it. */
export const textEnd = '\n\n';

const ascii = /^[\u0000-\u007f]*$/;

/** The distinct trigrams of a normalised text (with its end), added to `into`. */
export function addTrigrams(text: string, into: Set<string>): void {
  const padded = text + textEnd;
  if (ascii.test(padded)) {
    for (let i = 0; i + 3 <= padded.length; i++) into.add(padded.slice(i, i + 3));
    return;
  }
  const chars = Array.from(padded);
  for (let i = 0; i + 3 <= chars.length; i++) into.add(chars[i]! + chars[i + 1]! + chars[i + 2]!);
}

/** The trigrams every text containing the term holds (empty for a term shorter than three characters). */
export function termTrigrams(term: string): string[] {
  const chars = Array.from(term);
  const out = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i++) out.add(chars[i]! + chars[i + 1]! + chars[i + 2]!);
  return [...out];
}

/** Code points in a term (a short term is matched through the trigrams it starts). */
export function termLength(term: string): number {
  let n = 0;
  for (const _ of term) n++;
  return n;
}
