// The shared page in a real browser: Debian's headless Chromium loads
// GET /wishlists/shared/{token} from a running node.
//  - --dump-dom: the rendered DOM lists every item (name, image), and the
//    title's markup is text, not elements;
//  - --screenshot: a valid 1200x900 PNG whose item-grid area is full of the
//    product images (each product thumbnail's own dominant colour shows up),
//    where a share of an empty wishlist with the same title has none;
//  - the preview image URL: a 1200x630 PNG under 600 KB, not blank, and
//    Chromium renders it to the same pixels.
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  main, check, log, startNode, mintToken, http, expectStatus, createSharedWishlist, productName,
  tempDir, RUN_ID,
} from './lib/harness.mjs';
import { requireChromium, dumpDom, screenshot } from './lib/chromium.mjs';
import { decodePng, pngHeader, dominantColor, inkPixels, distinctColors, hex } from './lib/png.mjs';

const OWNER = 'Maya C.';
const TITLE = '<script>alert(1)</script> & "quotes"';
const PRODUCTS = ['prd_002', 'prd_006', 'prd_011', 'prd_015'];
const W = 1200;
const H = 900;
const INK_TOLERANCE = 24; // per channel, against the page background

const escapeText = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

main(async () => {
  requireChromium();
  const node = await startNode();
  const dir = tempDir('vantage-shots-');
  const token = mintToken(`usr_chromium_${RUN_ID}`, OWNER);
  const full = await createSharedWishlist(node.baseUrl, token, { title: TITLE, products: PRODUCTS });
  const empty = await createSharedWishlist(node.baseUrl, token, { title: TITLE, products: [] });
  const names = [];
  for (const p of PRODUCTS) names.push(await productName(node.baseUrl, p));
  log(`items: ${names.join(' | ')}; share ${full.share.share_url}; empty share ${empty.share.share_url}`);

  // ------------------------------------------------------------- DOM
  const dom = await check('chromium --dump-dom renders the shared page', () => dumpDom(full.share.share_url));

  await check('rendered DOM lists every item, in order, with its image', () => {
    const items = dom.match(/<li class="item">/g) || [];
    assert.equal(items.length, PRODUCTS.length, 'number of li.item in the DOM');
    const rendered = [...dom.matchAll(/<h2 class="name">(.*?)<\/h2>/gs)].map((m) => m[1]);
    assert.deepEqual(rendered, names.map(escapeText), 'item names in the DOM');
    for (const p of PRODUCTS) {
      assert.ok(dom.includes(`src="/catalog/images/${p}.png"`), `image of ${p} in the DOM`);
    }
  });

  await check('title markup is text in the DOM: no script element, heading shows the literal title', () => {
    assert.ok(!/<script[\s>]/i.test(dom), 'a <script> element was parsed into the DOM');
    const h1 = dom.match(/<h1>(.*?)<\/h1>/s);
    assert.ok(h1, 'no <h1> in the DOM');
    assert.equal(h1[1], escapeText(TITLE), 'heading text');
    const title = dom.match(/<title>(.*?)<\/title>/s);
    assert.equal(title && title[1], escapeText(`${OWNER}'s Wishlist: ${TITLE}`), 'document title');
  });

  await check('the empty wishlist\'s page has no items in the DOM', async () => {
    const d = await dumpDom(empty.share.share_url);
    assert.equal((d.match(/<li class="item">/g) || []).length, 0);
    assert.ok(d.includes(`<h1>${escapeText(TITLE)}</h1>`), 'empty page heading');
  });

  // ------------------------------------------------------- screenshots
  const shotFull = await check('chromium --screenshot of the page is a valid 1200x900 PNG', async () => {
    const buf = await screenshot(full.share.share_url, path.join(dir, 'full.png'), { width: W, height: H });
    const img = decodePng(buf);
    assert.equal(img.width, W);
    assert.equal(img.height, H);
    return img;
  });
  const shotEmpty = await check('chromium --screenshot of the empty wishlist\'s page (baseline)', async () => {
    const img = decodePng(await screenshot(empty.share.share_url, path.join(dir, 'empty.png'), { width: W, height: H }));
    assert.equal(img.width, W);
    assert.equal(img.height, H);
    return img;
  });

  await check('screenshot is not blank and its item grid differs substantially from the empty page', () => {
    const bg = dominantColor(shotEmpty);
    assert.equal(dominantColor(shotFull), bg, 'both pages share a background');
    assert.ok(distinctColors(shotFull) > 256, `only ${distinctColors(shotFull)} colours: blank screenshot?`);
    // The grid area starts below the header: the last row where the empty
    // page (header only) has anything on it.
    let headerBottom = 0;
    for (let y = 0; y < H; y++) {
      if (inkPixels(shotEmpty, bg, INK_TOLERANCE, { y0: y, y1: y + 1 }) > 0) headerBottom = y + 1;
    }
    assert.ok(headerBottom > 0 && headerBottom < H / 3, `header of the empty page ends at row ${headerBottom}`);
    const area = { y0: headerBottom };
    const inkFull = inkPixels(shotFull, bg, INK_TOLERANCE, area);
    const inkEmpty = inkPixels(shotEmpty, bg, INK_TOLERANCE, area);
    log(`background ${hex(bg)}; grid area rows ${headerBottom}..${H}: ${inkFull} non-background pixels with items, ${inkEmpty} without`);
    assert.ok(inkEmpty <= 500, `empty page has ${inkEmpty} non-background pixels in the grid area`);
    // Each card's image is ~244x244 px of colour; ask for well over a third.
    assert.ok(inkFull >= PRODUCTS.length * 20_000,
      `only ${inkFull} non-background pixels in the grid area for ${PRODUCTS.length} items`);
  });

  await check('each product\'s thumbnail shows in the screenshot (its dominant colour), none in the empty page', async () => {
    for (const p of PRODUCTS) {
      const r = await expectStatus(await http('GET', `${node.baseUrl}/catalog/images/${p}.png`), 200, `thumbnail ${p}`);
      const thumb = decodePng(r.bytes);
      const c = dominantColor(thumb);
      const inThumb = thumb.width * thumb.height - inkPixels(thumb, c, 0);
      const near = (img) => img.width * img.height - inkPixels(img, c, 6);
      const inFull = near(shotFull);
      const inEmpty = near(shotEmpty);
      log(`${p}: colour ${hex(c)}: ${inThumb} px in the thumbnail, ${inFull} in the page, ${inEmpty} in the empty page`);
      assert.ok(inFull >= inThumb / 2, `${p}: ${inFull} pixels of ${hex(c)} on the page, thumbnail has ${inThumb}`);
      assert.ok(inEmpty <= 50, `${p}: ${inEmpty} pixels of ${hex(c)} on the empty page`);
    }
  });

  // ----------------------------------------------------------- preview
  const previewUrl = full.share.preview_image_url;
  const preview = await check('preview image URL: 200 image/png, 1200x630, under 600 KB, not blank', async () => {
    const r = await expectStatus(await http('GET', previewUrl), 200, 'preview image');
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.ok(r.bytes.length > 0 && r.bytes.length < 600 * 1024, `preview is ${r.bytes.length} bytes`);
    const hdr = pngHeader(r.bytes);
    assert.equal(hdr.width, 1200);
    assert.equal(hdr.height, 630);
    const img = decodePng(r.bytes);
    const colours = distinctColors(img);
    log(`preview (${full.share.preview_status}): ${r.bytes.length} bytes, ${colours} colours`);
    assert.ok(colours > 16, `preview has only ${colours} colours`);
    return img;
  });

  await check('chromium renders the preview URL to the same 1200x630 pixels', async () => {
    const img = decodePng(await screenshot(previewUrl, path.join(dir, 'preview.png'), { width: 1200, height: 630 }));
    assert.equal(img.width, 1200);
    assert.equal(img.height, 630);
    let sum = 0;
    for (let i = 0; i < img.rgba.length; i++) if (i % 4 !== 3) sum += Math.abs(img.rgba[i] - preview.rgba[i]);
    const mean = sum / (img.width * img.height * 3);
    log(`preview in chromium vs decoded: mean abs difference ${mean.toFixed(3)} per channel`);
    assert.ok(mean < 2, `chromium's rendering differs from the PNG (mean ${mean})`);
  });
}, { budgetMs: 150_000 });
