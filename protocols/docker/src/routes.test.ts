import { describe, expect, it } from '@jest/globals';
import { canonicalizeTarget, classifyRoute } from './routes.js';
import { normalizeImageRef } from './image-ref.js';

const route = (method: string, target: string) => classifyRoute(canonicalizeTarget(method, target));

describe('routing as dockerd', () => {
  it('strips any /vX.Y prefix and decodes once', () => {
    expect(route('POST', '/v1.41/containers/create')?.action).toBe('container.create');
    expect(route('POST', '/v1/containers/create')?.action).toBe('container.create');
    expect(route('POST', '/containers/create')?.action).toBe('container.create');
    expect(route('GET', '/v1.41/containers/abc/%6Ason')).toMatchObject({
      action: 'container.inspect',
      name: 'abc',
    });
    expect(route('POST', '/containers/%63reate')?.action).toBe('container.create');
    expect(canonicalizeTarget('GET', '/v1.41/_ping').version).toBe('1.41');
  });
  it.each([
    '//containers/create',
    '/containers/../containers/create',
    '/containers/./create',
    '/containers%2Fcreate',
    '/v1.41/containers/x%2e%2e/json',
    '/a\\b',
    '/containers/%00/json',
    '/x%zz',
  ])('refuses the non-canonical path %s', (p) => {
    expect(() => canonicalizeTarget('POST', p)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
  });
  it('refuses semicolons in the query and decodes + as space', () => {
    expect(() => canonicalizeTarget('POST', '/images/create?fromImage=a;fromImage=b')).toThrow();
    expect(canonicalizeTarget('GET', '/x?a=b+c&a=d').query.get('a')).toBe('b c');
  });
  it('keeps slashes in image names like {name:.*}', () => {
    expect(route('GET', '/images/registry.local:5000/team/app/json')).toMatchObject({
      action: 'image.inspect',
      name: 'registry.local:5000/team/app',
    });
    expect(route('POST', '/images/team/app/push')).toMatchObject({ action: 'image.push', name: 'team/app' });
    expect(route('DELETE', '/images/team/app:1')).toMatchObject({
      action: 'image.remove',
      name: 'team/app:1',
    });
  });
  it('classifies actions and denies unknown routes', () => {
    expect(route('POST', '/containers/x/exec')?.action).toBe('container.exec');
    expect(route('POST', '/exec/123/start')).toMatchObject({ action: 'exec.start', response: 'hijack' });
    expect(route('POST', '/containers/x/attach')).toMatchObject({
      action: 'container.attach',
      response: 'hijack',
    });
    expect(route('PUT', '/containers/x/archive')?.action).toBe('container.archive');
    expect(route('POST', '/images/create?fromImage=busybox')?.action).toBe('image.pull');
    expect(route('POST', '/images/create?fromSrc=-')?.action).toBe('image.import');
    expect(route('POST', '/build')?.action).toBe('image.build');
    expect(route('POST', '/volumes/create')?.action).toBe('volume.create');
    expect(route('HEAD', '/_ping')?.action).toBe('system.ping');
    expect(route('POST', '/session')?.action).toBe('session');
    expect(route('GET', '/containers/x/logs')?.response).toBe('stream');
    expect(route('POST', '/nonexistent')).toBeUndefined();
    expect(route('GET', '/containers/create')).toBeUndefined();
    expect(route('PATCH', '/containers/x/json')).toBeUndefined();
  });
});

describe('image references', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['me/app', 'docker.io/me/app:latest'],
    ['localhost:5000/app', 'localhost:5000/app:latest'],
    ['ghcr.io/o/app@sha256:' + 'a'.repeat(64), 'ghcr.io/o/app@sha256:' + 'a'.repeat(64)],
  ])('%s → %s', (ref, want) => {
    expect(normalizeImageRef(ref)).toBe(want);
  });
});
