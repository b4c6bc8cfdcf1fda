// Share events as an outside consumer sees them: kcat reads
// wishlist.social.events from the embedded Kafka, and avsc (npm), given only
// schemas/avro/wishlist_social_event.avsc, decodes every value on the topic.
// Each value must be Avro single-object encoded (C3 01, then the
// little-endian CRC-64-AVRO of the schema's canonical form, then the body,
// nothing after it), keyed by its wishlist id on the partition Kafka's Java
// client would choose, with an event_id header equal to the value's event_id.
// The events of this test's share (created, viewed twice, item added,
// revoked once) are there, in order, with the right fields.
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  main, check, log, startNode, mintToken, http, expectStatus, createSharedWishlist, pollUntil,
  SOURCE_DIR, RUN_ID,
} from './lib/harness.mjs';
import { selfCheck, loadSchema, decodeSingleObject } from './lib/avro.mjs';
import {
  bootstrapServers, partitionCount, consumeAll, javaPartition, murmur2SelfCheck,
} from './lib/kcat.mjs';

const TOPIC = 'wishlist.social.events';
const SCHEMA_FILE = path.join(SOURCE_DIR, 'schemas', 'avro', 'wishlist_social_event.avsc');
const PRODUCTS = ['prd_003', 'prd_008'];
const UA_HTML = `vantage-kafka-test-html/${RUN_ID}`;
const UA_JSON = `vantage-kafka-test-json/${RUN_ID}`;
const REFERRER = `https://referrer.invalid/kafka-test/${RUN_ID}`;
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

main(async () => {
  await check('CRC-64-AVRO and avsc\'s canonical form reproduce the Avro spec vectors', () => {
    assert.ok(selfCheck() > 0);
  });
  await check('murmur2 reproduces Kafka\'s test vectors', () => {
    assert.ok(murmur2SelfCheck() > 0);
  });
  const schema = loadSchema(SCHEMA_FILE);
  log(`schema fingerprint (CRC-64-AVRO, LE bytes): ${schema.fpBytes.toString('hex')}`);

  const bootstrap = bootstrapServers();
  const partitions = await partitionCount(bootstrap, TOPIC);
  log(`kafka ${bootstrap}: ${TOPIC} has ${partitions} partitions`);

  const node = await startNode();
  const t0 = Date.now();
  const owner = `usr_kafka_owner_${RUN_ID}`;
  const recipient = `usr_kafka_recipient_${RUN_ID}`;
  const ownerTok = mintToken(owner, 'Kai K.');
  const recipientTok = mintToken(recipient, 'Rae R.');

  // ------------------------------------------------------ the share's life
  const { wishlistId, share } = await createSharedWishlist(
    node.baseUrl, ownerTok, { title: 'Kafka test', products: PRODUCTS, channel: 'link' });
  const token = share.share_token;
  log(`wishlist ${wishlistId}, share ${token}`);
  await expectStatus(await http('GET', share.share_url, { headers: { 'User-Agent': UA_HTML, Referer: REFERRER } }),
    200, 'HTML view');
  await expectStatus(await http('GET', `${node.baseUrl}/api/v2/wishlists/shared/${token}`,
    { token: recipientTok, headers: { 'User-Agent': UA_JSON } }), 200, 'JSON view');
  await expectStatus(await http('POST', `${node.baseUrl}/api/v2/wishlists/my/items`, {
    token: recipientTok,
    json: { product_id: PRODUCTS[1], source: 'shared_wishlist', source_token: token },
  }), 201, 'add from the share');
  await expectStatus(await http('DELETE', `${node.baseUrl}/api/v2/wishlists/${wishlistId}/shares/${token}`,
    { token: ownerTok }), 204, 'revoke');
  await expectStatus(await http('DELETE', `${node.baseUrl}/api/v2/wishlists/${wishlistId}/shares/${token}`,
    { token: ownerTok }), 204, 'revoke again');
  await expectStatus(await http('GET', `${node.baseUrl}/api/v2/wishlists/shared/${token}`), 404, 'view after revoke');
  // A fence: a second share of the same wishlist. Its share_created comes
  // after every event above in the key's partition, so once it is there the
  // counts for the first share are final.
  const fence = await expectStatus(await http('POST', `${node.baseUrl}/api/v2/wishlists/${wishlistId}/share`,
    { token: ownerTok, json: { channel: 'email' } }), 201, 'second share (fence)');
  const fenceToken = fence.json.share_token;

  // ------------------------------------------------------ wait, then read
  const keyPartition = javaPartition(Buffer.from(wishlistId, 'utf8'), partitions);
  await check(`the events reach partition ${keyPartition} (kcat, polled with a deadline)`, () => pollUntil(
    `share_created of the fence share ${fenceToken} on partition ${keyPartition}`, async () => {
      const msgs = await consumeAll(bootstrap, TOPIC, { partition: keyPartition });
      return msgs.some((m) => {
        try {
          const v = decodeSingleObject(schema, m.value);
          return v.share_token === fenceToken && v.event_type === 'share_created';
        } catch { return false; }
      });
    }, { timeoutMs: 30_000, intervalMs: 250 }));

  const tRead = Date.now();
  const all = await consumeAll(bootstrap, TOPIC);
  log(`kcat read ${all.length} messages from all ${partitions} partitions in ${Date.now() - tRead} ms`);

  const decoded = await check('every value on the topic: C3 01 marker, schema fingerprint, avsc decodes the whole body', () => {
    const out = [];
    const failures = [];
    for (const m of all) {
      try {
        out.push({ ...m, v: decodeSingleObject(schema, m.value) });
      } catch (e) {
        failures.push(`p${m.partition}@${m.offset}: ${e.message}`);
      }
    }
    assert.ok(all.length > 0, 'the topic is empty');
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${all.length} values fail`);
    return out;
  });

  await check('every message: key = wishlist_id, partition = Java murmur2 of the key, event_id header = value.event_id', () => {
    const failures = [];
    for (const m of decoded) {
      const where = `p${m.partition}@${m.offset} (${m.v.event_type} ${m.v.share_token})`;
      if (!m.key || m.key.toString('utf8') !== m.v.wishlist_id) failures.push(`${where}: key ${m.key} != ${m.v.wishlist_id}`);
      else if (javaPartition(m.key, partitions) !== m.partition) failures.push(`${where}: key hashes to partition ${javaPartition(m.key, partitions)}`);
      const ids = m.headers.filter(([k]) => k === 'event_id').map(([, v]) => v);
      if (ids.length !== 1 || ids[0] !== m.v.event_id) failures.push(`${where}: event_id headers ${JSON.stringify(ids)} != ${m.v.event_id}`);
      if (!ISO_UTC.test(m.v.timestamp)) failures.push(`${where}: timestamp ${m.v.timestamp}`);
    }
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${decoded.length} messages fail`);
  });

  const mine = decoded.filter((m) => m.v.share_token === token);
  await check('this share\'s events: created, viewed x2, item added, revoked once, in that order', () => {
    for (const m of mine) log(`  p${m.partition}@${m.offset} ${JSON.stringify(m.v)}`);
    assert.deepEqual(mine.map((m) => m.v.event_type),
      ['share_created', 'share_viewed', 'share_viewed', 'share_item_added', 'share_revoked']);
    assert.ok(mine.every((m) => m.partition === keyPartition), 'all on the key\'s partition');
    for (let i = 1; i < mine.length; i++) assert.ok(mine[i].offset > mine[i - 1].offset, 'offsets increase');
    assert.equal(new Set(mine.map((m) => m.v.event_id)).size, mine.length, 'event ids are unique');
  });

  await check('the events carry the share\'s data', () => {
    const [created, viewHtml, viewJson, added, revoked] = mine.map((m) => m.v);
    for (const v of [created, viewHtml, viewJson, added, revoked]) {
      assert.equal(v.wishlist_id, wishlistId, `${v.event_type}: wishlist_id`);
      assert.equal(v.user_id, owner, `${v.event_type}: user_id (the sharer)`);
      assert.equal(v.share_token, token, `${v.event_type}: share_token`);
      assert.equal(v.share_channel, 'link', `${v.event_type}: share_channel`);
      assert.match(v.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${v.event_type}: event_id`);
      const ts = Date.parse(v.timestamp);
      assert.ok(ts >= Math.floor(t0 / 1000) * 1000 - 5000 && ts <= Date.now() + 5000,
        `${v.event_type}: timestamp ${v.timestamp} outside the test's run`);
    }
    assert.equal(created.item_count, PRODUCTS.length, 'share_created item_count');
    assert.equal(created.recipient_user_id, null, 'share_created recipient');
    assert.equal(viewHtml.item_count, PRODUCTS.length, 'share_viewed (HTML) item_count');
    assert.equal(viewJson.item_count, PRODUCTS.length, 'share_viewed (JSON) item_count');
    assert.equal(viewHtml.metadata.user_agent, UA_HTML, 'HTML view user_agent');
    assert.equal(viewHtml.metadata.referrer, REFERRER, 'HTML view referrer');
    assert.equal(viewJson.metadata.user_agent, UA_JSON, 'JSON view user_agent');
    assert.equal(added.recipient_user_id, recipient, 'share_item_added recipient_user_id');
    assert.equal(added.item_count, 1, 'share_item_added item_count (items added)');
  });

  await check('negative control: the checks reject corrupted copies of a real value', () => {
    const good = mine[0].value;
    assert.equal(decodeSingleObject(schema, good).event_id, mine[0].v.event_id);
    const flipped = Buffer.from(good);
    flipped[5] ^= 0x01;
    const corrupt = {
      marker: Buffer.concat([Buffer.from([0xc3, 0x02]), good.subarray(2)]),
      fingerprint: flipped,
      'trailing byte': Buffer.concat([good, Buffer.from([0x00])]),
      truncated: good.subarray(0, good.length - 1),
      'no header': good.subarray(10),
    };
    for (const [what, buf] of Object.entries(corrupt)) {
      assert.throws(() => decodeSingleObject(schema, buf), Error, `a value with a bad ${what} was accepted`);
    }
  });

  await check('the fence share\'s share_created follows, with channel email', () => {
    const f = decoded.filter((m) => m.v.share_token === fenceToken);
    assert.deepEqual(f.map((m) => m.v.event_type), ['share_created']);
    assert.equal(f[0].v.share_channel, 'email');
    assert.ok(f[0].offset > mine[mine.length - 1].offset, 'after share_revoked');
  });
}, { budgetMs: 160_000 });
