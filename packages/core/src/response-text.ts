/**
 * A fetch response's body as text, reading at most `maxBytes`: a chunked answer has no length to check first, and
 * one that goes on would otherwise be held in memory whole. `whole` is false when the body went on past the limit;
 * the rest is not read (leaving the loop cancels the stream, which closes the connection).
 */
export async function responseTextUpTo(
  response: Response,
  maxBytes: number,
): Promise<{ text: string; whole: boolean }> {
  if (response.body === null) return { text: '', whole: true };
  const chunks: Uint8Array[] = [];
  let size = 0;
  let whole = true;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      whole = false;
      break;
    }
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), whole };
}
