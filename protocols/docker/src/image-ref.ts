/**
 * Image references normalised the way distribution/reference `ParseNormalizedNamed` does, so a rule naming
 * `docker.io/library/busybox` matches `busybox`, `library/busybox:latest` and `index.docker.io/library/busybox`.
 */
const ID = /^(?:sha256:)?[0-9a-f]{64}$/;

export function normalizeImageRef(ref: string): string {
  const trimmed = ref.trim();
  if (trimmed === '' || ID.test(trimmed)) return trimmed;
  let name = trimmed;
  let digest = '';
  const at = name.indexOf('@');
  if (at !== -1) {
    digest = name.slice(at);
    name = name.slice(0, at);
  }
  let tag = '';
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = name.slice(colon);
    name = name.slice(0, colon);
  }
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  let domain = 'docker.io';
  let path = name;
  // A first component is a registry host when it has a dot or port, is localhost, or has upper case letters.
  if (
    slash !== -1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())
  ) {
    domain = first;
    path = name.slice(slash + 1);
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (tag === '' && digest === '') tag = ':latest';
  return `${domain}/${path}${tag}${digest}`;
}

/** `fromImage` plus a separate `tag` query parameter, as `POST /images/create` takes them. */
export function imageWithTag(image: string, tag: string | null): string {
  if (!tag) return image;
  return tag.startsWith('sha256:') ? `${image}@${tag}` : `${image}:${tag}`;
}
