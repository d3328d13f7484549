// Accessibility basics of the room page, in the light and the dark scheme:
// the timeline is a live log, the composer keeps focus, and text and control
// borders have enough contrast (WCAG 2.x AA: 4.5:1 text, 3:1 large text and
// control boundaries).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import {
  artifacts, newPage, send, serverAndBrowser, waitForMessage, waitForStatus, PATIENCE,
} from './support.js';

const env = serverAndBrowser();

/** Over the server's default limit of 65,536 bytes per `send` frame. */
const TOO_LONG = 'x'.repeat(70_000);

/**
 * Runs in the page: every visible element with a non-empty direct text node
 * (outside `.visually-hidden`), its text colour against its effective
 * background, and every enabled input and button, its border colour against
 * the background behind it. Returns what was checked.
 */
function measureContrast() {
  const parse = (value) => {
    const m = /^rgba?\(\s*([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)$/.exec(value);
    if (!m) throw new Error(`cannot parse colour ${JSON.stringify(value)}`);
    let a = m[4] === undefined ? 1 : parseFloat(m[4]);
    if (m[4]?.endsWith('%')) a /= 100;
    return { r: +m[1], g: +m[2], b: +m[3], a };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const show = (c) => `#${[c.r, c.g, c.b].map((v) => Math.round(v).toString(16).padStart(2, '0')).join('')}`;
  const luminance = (c) => {
    const lin = (v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  /** The colour behind `element`'s content: its and its ancestors' backgrounds, blended. */
  const backgroundOf = (element) => {
    const layers = [];
    for (let el = element; el; el = el.parentElement) {
      const bg = parse(getComputedStyle(el).backgroundColor);
      if (bg.a > 0) layers.push(bg);
      if (bg.a >= 1) break;
    }
    // Nothing opaque: the canvas, white (the page declares no color-scheme).
    let colour = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.dataset.testid) s += `[data-testid="${el.dataset.testid}"]`;
    if (el.classList.length) s += `.${[...el.classList].join('.')}`;
    const parent = el.parentElement;
    if (parent && !el.dataset.testid) {
      let p = parent.tagName.toLowerCase();
      if (parent.dataset.testid) p += `[data-testid="${parent.dataset.testid}"]`;
      if (parent.classList.length) p += `.${[...parent.classList].join('.')}`;
      s = `${p} > ${s}`;
    }
    return s;
  };
  const visible = (el) => {
    const style = getComputedStyle(el);
    return el.getClientRects().length > 0 && style.visibility === 'visible' && style.display !== 'none';
  };

  const checks = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.visually-hidden') || !visible(el)) continue;
    const text = [...el.childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.data).join('').trim();
    if (text) {
      const style = getComputedStyle(el);
      const bg = backgroundOf(el);
      const fg = over(parse(style.color), bg);
      const size = parseFloat(style.fontSize);
      const bold = parseInt(style.fontWeight, 10) >= 700;
      const large = size >= 24 || (size >= 18.66 && bold);
      checks.push({
        kind: 'text', element: describe(el), text: text.slice(0, 60), fg: show(fg), bg: show(bg),
        ratio: ratio(fg, bg), required: large ? 3 : 4.5, size, weight: style.fontWeight,
        disabled: el.disabled === true,
      });
    }
    if ((el.tagName === 'INPUT' || el.tagName === 'BUTTON') && !el.disabled) {
      const style = getComputedStyle(el);
      const behind = backgroundOf(el.parentElement);
      // One check per distinct border colour (usually all four sides are alike).
      const sides = new Map();
      for (const side of ['top', 'right', 'bottom', 'left']) {
        const width = parseFloat(style.getPropertyValue(`border-${side}-width`));
        const kind = style.getPropertyValue(`border-${side}-style`);
        if (!(width > 0) || kind === 'none' || kind === 'hidden') continue;
        const colour = style.getPropertyValue(`border-${side}-color`);
        sides.set(colour, [...(sides.get(colour) ?? []), side]);
      }
      for (const [colour, names] of sides) {
        const border = over(parse(colour), behind);
        checks.push({
          kind: names.length === 4 ? 'border' : `border-${names.join('-')}`, element: describe(el),
          text: (el.value ?? el.textContent).slice(0, 60),
          fg: show(border), bg: show(behind), ratio: ratio(border, behind), required: 3,
        });
      }
    }
    if (el.tagName === 'INPUT' && visible(el)) {
      const style = getComputedStyle(el);
      const bg = backgroundOf(el);
      if (el.value) {
        const fg = over(parse(style.color), bg);
        checks.push({
          kind: 'input-value', element: describe(el), text: el.value.slice(0, 60), fg: show(fg), bg: show(bg),
          ratio: ratio(fg, bg), required: 4.5,
        });
      } else if (el.placeholder) {
        const fg = over(parse(getComputedStyle(el, '::placeholder').color), bg);
        checks.push({
          kind: 'placeholder', element: describe(el), text: el.placeholder, fg: show(fg), bg: show(bg),
          ratio: ratio(fg, bg), required: 4.5,
        });
      }
    }
  }
  return checks;
}

/** Checks contrast on `page` and fails with every element below the bar. */
async function assertContrast(page, label) {
  const checks = await page.evaluate(measureContrast);
  const asserted = checks;
  const failing = checks.filter((c) => c.ratio < c.required);
  const report = failing.map((c) => `  ${c.kind} ${c.element} ${JSON.stringify(c.text)}: ${c.fg} on ${c.bg} = `
    + `${c.ratio.toFixed(2)}:1, needs ${c.required}:1${c.size ? ` (${c.size}px, weight ${c.weight})` : ''}`
    + `${c.disabled ? ' [disabled control]' : ''}`);
  assert.equal(failing.length, 0, `${label}: contrast below WCAG AA for ${failing.length} of ${asserted.length} checks:\n`
    + `${report.join('\n')}`);
  return checks;
}

async function composerIsFocused(page) {
  return page.evaluate(() => document.activeElement?.dataset?.testid === 'composer');
}

for (const colorScheme of ['light', 'dark']) {
  test(`the room page in the ${colorScheme} scheme: a live log, focus kept on the composer, enough contrast`, async (t) => {
    const room = `e2e-a11y-${colorScheme}`;
    const context = await env.browser.newContext({ colorScheme, viewport: { width: 900, height: 700 } });
    const alice = await context.newPage();
    alice.on('pageerror', (error) => console.error(`page error: ${error.message}`));
    const bob = await newPage(env.browser);
    try {
      await alice.goto(`${env.server.url}/room/${room}?name=Alice`);
      await waitForStatus(alice, 'open');
      assert.equal(await alice.evaluate((s) => matchMedia(`(prefers-color-scheme: ${s})`).matches, colorScheme), true,
        `the page sees the ${colorScheme} scheme`);

      // (a) The timeline is a log.
      assert.equal(await alice.getByTestId('timeline').getAttribute('role'), 'log');

      // (b) The composer has focus once the room is loaded...
      assert.ok(await composerIsFocused(alice), 'the composer has focus after the room loads; active element: '
        + `${await alice.evaluate(() => document.activeElement?.outerHTML.slice(0, 120))}`);

      await bob.goto(`${env.server.url}/room/${room}?name=Bob`);
      await waitForStatus(bob, 'open');
      await send(bob, 'a message from Bob');
      await waitForMessage(alice, 'a message from Bob');

      // ...and again after sending with the Send button.
      await alice.getByTestId('composer').fill('one of my own');
      await alice.getByTestId('send').click();
      const mine = await waitForMessage(alice, 'one of my own');
      assert.match(await mine.getAttribute('class'), /\bmine\b/);
      await alice.getByTestId('pending').waitFor({ state: 'detached', timeout: PATIENCE });
      assert.ok(await composerIsFocused(alice), 'the composer has focus after clicking Send; active element: '
        + `${await alice.evaluate(() => document.activeElement?.outerHTML.slice(0, 120))}`);
      assert.equal(await alice.getByTestId('composer').inputValue(), '', 'the composer is emptied');

      // (c) Contrast, with someone else's message, one of our own and a system line shown.
      await alice.locator('[data-testid="system"]').first().waitFor({ timeout: PATIENCE });
      const checks = await assertContrast(alice, `${colorScheme}, room`);
      const covered = (pattern) => checks.some((c) => c.kind === 'text' && pattern.test(c.element));
      assert.ok(covered(/li\[data-testid="message"\]\.message > div\.text/), 'checked a message from someone else');
      assert.ok(covered(/\.message\.mine > div\.text/), 'checked a message of our own');
      assert.ok(covered(/li\[data-testid="system"\]/), 'checked a system line');
      await alice.screenshot({ path: path.join(artifacts, `a11y-${colorScheme}.png`) });

      // The composer's error state: text over the size limit.
      await alice.getByTestId('composer').fill(TOO_LONG);
      await alice.getByTestId('composer-error').waitFor({ timeout: PATIENCE });
      const errorChecks = await assertContrast(alice, `${colorScheme}, composer error`);
      assert.ok(errorChecks.some((c) => c.kind === 'text' && /composer-error/.test(c.element)),
        'checked the composer error');
      await alice.screenshot({ path: path.join(artifacts, `a11y-${colorScheme}-composer-error.png`) });
    } finally {
      await context.close();
      await bob.context().close();
    }
  });
}
