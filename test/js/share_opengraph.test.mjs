// The shared page unfurls: open-graph-scraper (npm) fetches
// GET /wishlists/shared/{token} from a running node and every Open Graph and
// Twitter tag has the value API.md ("Shares") prescribes. The wishlist title
// carries markup and quotes, so the values also prove the HTML escaping
// round-trips to the literal text; the tags sit in the first 4096 bytes.
import assert from 'node:assert/strict';
import ogs from 'open-graph-scraper';
import {
  main, check, log, startNode, mintToken, http, expectStatus, createSharedWishlist, RUN_ID,
} from './lib/harness.mjs';

const OWNER = 'Maya C.';
const TITLE = '<script>alert(1)</script> & "quotes"';
const PRODUCTS = ['prd_001', 'prd_004', 'prd_007'];

// Every tag API.md lists, with ogs' name for it.
const TAG_COUNT = 11;

const ogsOptions = {
  // Only what the page's own tags say: no fallbacks from <title> etc.
  onlyGetOpenGraphInfo: true,
  // A loopback address has no TLD.
  urlValidatorSettings: {
    protocols: ['http', 'https'], require_tld: false, require_protocol: true, require_host: true,
    require_valid_protocol: true, allow_underscores: true, allow_trailing_dot: false,
    allow_protocol_relative_urls: false, allow_fragments: true, allow_query_components: true,
    validate_length: true,
  },
  timeout: 10,
  fetchOptions: { headers: { 'user-agent': 'facebookexternalhit/1.1 (vantage share_opengraph test)' } },
};

function expectedTags(n, share) {
  return {
    ogType: 'product.group',
    ogTitle: `${OWNER}'s Wishlist: ${TITLE}`,
    ogDescription: `${n} items on ${OWNER}'s wishlist`,
    ogUrl: share.share_url,
    twitterCard: 'summary_large_image',
    twitterTitle: `${OWNER}'s Wishlist`,
    twitterDescription: `Check out ${n} items!`,
  };
}

function assertTags(result, n, share, where) {
  assert.equal(result.success, true, `${where}: ogs success`);
  for (const [k, v] of Object.entries(expectedTags(n, share))) {
    assert.equal(result[k], v, `${where}: ${k}`);
  }
  assert.ok(Array.isArray(result.ogImage), `${where}: ogImage present`);
  assert.equal(result.ogImage.length, 1, `${where}: exactly one og:image`);
  assert.equal(result.ogImage[0].url, share.preview_image_url, `${where}: og:image`);
  assert.equal(String(result.ogImage[0].width), '1200', `${where}: og:image:width`);
  assert.equal(String(result.ogImage[0].height), '630', `${where}: og:image:height`);
  assert.ok(Array.isArray(result.twitterImage), `${where}: twitterImage present`);
  assert.equal(result.twitterImage.length, 1, `${where}: exactly one twitter:image`);
  assert.equal(result.twitterImage[0].url, share.preview_image_url, `${where}: twitter:image`);
}

main(async () => {
  const node = await startNode();
  const token = mintToken(`usr_ogs_${RUN_ID}`, OWNER);
  const { share } = await createSharedWishlist(node.baseUrl, token, { title: TITLE, products: PRODUCTS });
  const n = PRODUCTS.length;
  log(`share ${share.share_token}: ${share.share_url}`);

  await check('share answer names the page and preview URLs of this node', () => {
    assert.equal(share.share_url, `${node.baseUrl}/wishlists/shared/${share.share_token}`);
    assert.equal(share.preview_image_url, `${node.baseUrl}/social/${share.share_token}/preview.png`);
    assert.equal(share.item_count, n);
  });

  const res = await check('open-graph-scraper fetches and parses the page', async () => {
    const r = await ogs({ ...ogsOptions, url: share.share_url });
    assert.equal(r.error, false, `ogs error: ${JSON.stringify(r.result)}`);
    assert.equal(r.response.status, 200, 'page status');
    return r;
  });

  await check('page is text/html; charset=utf-8, cacheable for 300 s', () => {
    assert.equal(res.response.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.response.headers.get('cache-control'), 'public, max-age=300');
  });

  await check('every og:/twitter: tag has its API.md value (markup in the title round-trips)', () => {
    log('ogs result:', JSON.stringify(res.result));
    assertTags(res.result, n, share, 'whole page');
  });

  // The raw bytes, as a crawler that reads only the head of a page sees them.
  const raw = await expectStatus(await http('GET', share.share_url), 200, 'raw page');

  await check('each tag appears exactly once, with HTML-escaped text and no raw markup', () => {
    const html = raw.text;
    const metas = html.match(/<meta\s+(?:property|name)="(?:og|twitter):[^"]+"[^>]*>/g) || [];
    assert.equal(metas.length, TAG_COUNT, `og:/twitter: meta tags: ${metas.join('\n')}`);
    const names = metas.map((m) => m.match(/(?:property|name)="([^"]+)"/)[1]);
    assert.equal(new Set(names).size, TAG_COUNT, `duplicate tags: ${names}`);
    assert.ok(!html.includes('<script>alert(1)</script>'), 'the title\'s markup reached the page unescaped');
    assert.ok(!/<script[\s>]/i.test(html), 'the page contains a <script> element');
    const ogTitle = metas.find((m) => m.includes('"og:title"'));
    assert.ok(!/content="[^"]*"quotes"/.test(ogTitle), `a raw quote breaks the attribute: ${ogTitle}`);
  });

  await check('all tags are within the first 4096 bytes of the HTML', async () => {
    const head = raw.bytes.subarray(0, 4096);
    const headText = new TextDecoder('utf-8', { fatal: false }).decode(head);
    // Byte offset of the end of the last og:/twitter: tag.
    const all = [...raw.text.matchAll(/<meta\s+(?:property|name)="(?:og|twitter):[^>]*>/g)];
    const last = all[all.length - 1];
    const endByte = Buffer.byteLength(raw.text.slice(0, last.index + last[0].length), 'utf8');
    log(`last og:/twitter: tag ends at byte ${endByte} of ${raw.bytes.length}`);
    assert.ok(endByte <= 4096, `last tag ends at byte ${endByte}`);
    // The same parser, given only those 4096 bytes, finds every tag.
    const r = await ogs({ ...ogsOptions, html: headText });
    assertTags(r.result, n, share, 'first 4096 bytes');
    // Negative control: cut before the tags, the same parser finds none.
    const cut = raw.text.slice(0, raw.text.indexOf('<meta property="og:'));
    const none = await ogs({ ...ogsOptions, html: `${cut}</head></html>` });
    assert.equal(none.result.success, true);
    const found = Object.keys(none.result).filter((k) => /^(og|twitter)/.test(k));
    assert.deepEqual(found, [], 'ogs found tags in HTML cut before them');
  });

  await check('JSON view agrees on title, owner and item count', async () => {
    const j = await expectStatus(
      await http('GET', `${node.baseUrl}/api/v2/wishlists/shared/${share.share_token}`), 200, 'JSON view');
    assert.equal(j.json.wishlist.title, TITLE);
    assert.equal(j.json.wishlist.owner_display_name, OWNER);
    assert.equal(j.json.wishlist.item_count, n);
  });
}, { budgetMs: 100_000 });
