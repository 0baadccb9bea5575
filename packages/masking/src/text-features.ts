/**
 * The pre-filter's first stage: one pass over the value's char codes that collects the few facts every detector
 * needs to have any chance (an `@` for an email, 13 digits in a run of digits/spaces/dashes for a card, a run of 20
 * upper-case letters or digits for an AWS key, …). Most values of a result (ids, names, dates, amounts) rule out
 * every detector here, with no regex run at all. Lower-case letters, the bulk of text, take the cheapest path.
 */
export interface TextFeatures {
  value: string;
  length: number;
  at: boolean;
  colon: boolean;
  equals: boolean;
  underscore: boolean;
  dots: number;
  /** ASCII letters (a key name such as `password` needs some). */
  letters: number;
  /** Longest run of `-`. */
  dashRun: number;
  /** Most digits within one run of `[0-9 -]` (cards are written `4111 1111 …` or `4111-1111-…`). */
  digitsInCardRun: number;
  /** Most digits within one run of `[0-9-]` (SSNs). */
  digitsInDashRun: number;
  /** Longest run of `[A-Z0-9]` (AWS key ids). */
  upperDigitRun: number;
  /** Two upper-case letters followed by two digits somewhere (IBAN country code + check digits). */
  ibanStart: boolean;
}

const OTHER = 0;
const DIGIT = 1;
const UPPER = 2;
const DASH = 3;
const SPACE = 4;
const MARK = 5; // @ : = _ .

const CLASS = new Uint8Array(128);
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT;
for (let c = 65; c <= 90; c++) CLASS[c] = UPPER;
CLASS[45] = DASH;
CLASS[32] = SPACE;
for (const c of '@:=_.') CLASS[c.charCodeAt(0)] = MARK;

export function textFeatures(value: string): TextFeatures {
  const f: TextFeatures = {
    value,
    length: value.length,
    at: false,
    colon: false,
    equals: false,
    underscore: false,
    dots: 0,
    letters: 0,
    dashRun: 0,
    digitsInCardRun: 0,
    digitsInDashRun: 0,
    upperDigitRun: 0,
    ibanStart: false,
  };
  let dashRun = 0;
  let cardDigits = 0;
  let dashDigits = 0;
  let upperDigit = 0;
  let uppersBefore = 0; // consecutive upper-case letters just before the current digit run
  let digitsAfterUppers = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const kind = c < 128 ? CLASS[c]! : OTHER;
    if (kind === OTHER) {
      if (c >= 97 && c <= 122) f.letters++;
      dashRun = cardDigits = dashDigits = upperDigit = uppersBefore = digitsAfterUppers = 0;
      continue;
    }
    if (kind === DIGIT) {
      if (++cardDigits > f.digitsInCardRun) f.digitsInCardRun = cardDigits;
      if (++dashDigits > f.digitsInDashRun) f.digitsInDashRun = dashDigits;
      if (++upperDigit > f.upperDigitRun) f.upperDigitRun = upperDigit;
      if (uppersBefore >= 2 && ++digitsAfterUppers >= 2) f.ibanStart = true;
      dashRun = 0;
      continue;
    }
    if (kind === UPPER) {
      f.letters++;
      if (++upperDigit > f.upperDigitRun) f.upperDigitRun = upperDigit;
      if (digitsAfterUppers > 0) uppersBefore = digitsAfterUppers = 0;
      uppersBefore++;
      dashRun = cardDigits = dashDigits = 0;
      continue;
    }
    upperDigit = uppersBefore = digitsAfterUppers = 0;
    if (kind === DASH) {
      if (++dashRun > f.dashRun) f.dashRun = dashRun;
      continue;
    }
    dashRun = 0;
    if (kind === SPACE) {
      dashDigits = 0;
      continue;
    }
    cardDigits = dashDigits = 0;
    if (c === 64) f.at = true;
    else if (c === 58) f.colon = true;
    else if (c === 61) f.equals = true;
    else if (c === 95) f.underscore = true;
    else f.dots++;
  }
  return f;
}
