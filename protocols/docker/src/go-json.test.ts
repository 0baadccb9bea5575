import { describe, expect, it } from '@jest/globals';
import { GoJsonObject, asBool, asStrings, field, foldKey, mapEntries, parseGoJson } from './go-json.js';

describe('Go encoding/json semantics', () => {
  it('matches keys case-insensitively, last duplicate wins', () => {
    const v = parseGoJson('{"privileged":false,"PRIVILEGED":true}');
    expect(asBool(field(v, 'Privileged'))).toBe(true);
    const w = parseGoJson('{"Privileged":true,"privileged":false}');
    expect(asBool(field(w, 'Privileged'))).toBe(false);
    // JSON.parse would keep {Privileged: true}: exact duplicates keep the last value but the first position.
    const x = parseGoJson('{"Privileged":false,"privileged":false,"Privileged":true}');
    expect(asBool(field(x, 'Privileged'))).toBe(true);
  });
  it('folds Unicode like Go (long s, Kelvin sign)', () => {
    expect(foldKey('Bind\u017f')).toBe(foldKey('Binds'));
    expect(asStrings(field(parseGoJson('{"Bind\u017f":["/:/host"]}'), 'Binds'))).toEqual(['/:/host']);
    expect(foldKey('\u212Aey')).toBe('KEY');
  });
  it('merges a struct given twice, null resets', () => {
    const v = parseGoJson('{"HostConfig":{"Privileged":true},"hostconfig":{"Binds":["/etc:/x"]}}');
    const hc = field(v, 'HostConfig');
    expect(asBool(field(hc, 'Privileged'))).toBe(true);
    expect(asStrings(field(hc, 'Binds'))).toEqual(['/etc:/x']);
    expect(
      field(parseGoJson('{"HostConfig":{"Privileged":true},"HostConfig":null}'), 'HostConfig'),
    ).toBeNull();
  });
  it('keeps map keys exact', () => {
    const m = mapEntries(field(parseGoJson('{"DriverOpts":{"o":"bind","O":"x","o":"rbind"}}'), 'DriverOpts'));
    expect(m.get('o')).toBe('rbind');
    expect(m.get('O')).toBe('x');
  });
  it('parses escapes and refuses trailing data or bad syntax', () => {
    expect(field(parseGoJson('{"\\u0049mage":"a\\u00e9"}'), 'Image')).toBe('a\u00e9');
    expect(() => parseGoJson('{"a":1}{"b":2}')).toThrow();
    expect(() => parseGoJson("{'a':1}")).toThrow();
    expect(() => parseGoJson('{"a":01}')).toThrow();
    expect(parseGoJson('[1,true,null,"x",{}]')).toEqual([1, true, null, 'x', new GoJsonObject([])]);
  });
});
