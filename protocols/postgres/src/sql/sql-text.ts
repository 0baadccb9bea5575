/**
 * libpg_query reports locations as byte offsets into the UTF-8 query (pg_query.proto: "stmt_location: start
 * location, or -1 if unknown"; "stmt_len: length in bytes; 0 means rest of string"). JS strings index UTF-16
 * code units, so non-ASCII text is sliced through its UTF-8 bytes.
 */
const ASCII_ONLY = /^[\x00-\x7f]*$/;

export function statementSlice(
  text: string,
  location: number | undefined,
  length: number | undefined,
): string {
  const start = location !== undefined && location > 0 ? location : 0;
  if (ASCII_ONLY.test(text)) {
    return (
      length !== undefined && length > 0 ? text.slice(start, start + length) : text.slice(start)
    ).trim();
  }
  const bytes = Buffer.from(text, 'utf8');
  const end = length !== undefined && length > 0 ? start + length : bytes.length;
  return bytes.subarray(start, end).toString('utf8').trim();
}
