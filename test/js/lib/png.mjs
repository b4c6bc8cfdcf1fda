// A small, strict PNG reader (no dependencies): checks the signature, every
// chunk's CRC, IHDR, inflates IDAT, undoes the scanline filters and returns
// RGBA pixels. Supports 8-bit grayscale, gray+alpha, RGB, RGBA and palette
// images without interlacing, which is what Chromium and the Vantage encoder
// write.
import zlib from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// Only the header: {width, height, bitDepth, colorType, interlace}.
export function pngHeader(buf) {
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG (bad signature)');
  if (buf.toString('latin1', 12, 16) !== 'IHDR') throw new Error('PNG does not start with IHDR');
  return {
    width: buf.readUInt32BE(16),
    height: buf.readUInt32BE(20),
    bitDepth: buf[24],
    colorType: buf[25],
    interlace: buf[28],
  };
}

export function decodePng(buf) {
  const hdr = pngHeader(buf);
  const { width, height, bitDepth, colorType, interlace } = hdr;
  if (bitDepth !== 8) throw new Error(`unsupported bit depth ${bitDepth}`);
  if (interlace !== 0) throw new Error('interlaced PNG not supported');
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  if (!channels) throw new Error(`unsupported color type ${colorType}`);
  let off = 8;
  const idat = [];
  let palette = null;
  let trns = null;
  let sawEnd = false;
  while (off < buf.length) {
    if (off + 12 > buf.length) throw new Error('truncated chunk');
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (off + 12 + len > buf.length) throw new Error(`truncated ${type} chunk`);
    const data = buf.subarray(off + 8, off + 8 + len);
    const crc = buf.readUInt32BE(off + 8 + len);
    if (crc32(buf.subarray(off + 4, off + 8 + len)) !== crc) throw new Error(`bad CRC in ${type} chunk`);
    if (type === 'IDAT') idat.push(data);
    else if (type === 'PLTE') palette = data;
    else if (type === 'tRNS') trns = data;
    else if (type === 'IEND') { sawEnd = true; break; }
    off += 12 + len;
  }
  if (!sawEnd) throw new Error('no IEND chunk');
  if (!idat.length) throw new Error('no IDAT chunk');
  if (colorType === 3 && !palette) throw new Error('palette image without PLTE');
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) {
    throw new Error(`IDAT inflates to ${raw.length} bytes, expected ${height * (stride + 1)}`);
  }
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? cur[i - channels] : 0;
      const b = prev ? prev[i] : 0;
      const c = prev && i >= channels ? prev[i - channels] : 0;
      let v = line[i];
      switch (filter) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`bad filter type ${filter} on row ${y}`);
      }
      cur[i] = v & 0xff;
    }
  }
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0, j = 0; i < width * height; i++, j += 4) {
    const s = i * channels;
    switch (colorType) {
      case 0: rgba[j] = rgba[j + 1] = rgba[j + 2] = px[s]; rgba[j + 3] = 255; break;
      case 4: rgba[j] = rgba[j + 1] = rgba[j + 2] = px[s]; rgba[j + 3] = px[s + 1]; break;
      case 2: rgba[j] = px[s]; rgba[j + 1] = px[s + 1]; rgba[j + 2] = px[s + 2]; rgba[j + 3] = 255; break;
      case 6: px.copy(rgba, j, s, s + 4); break;
      case 3: {
        const k = px[s];
        if (3 * k + 2 >= palette.length) throw new Error(`palette index ${k} out of range`);
        rgba[j] = palette[3 * k]; rgba[j + 1] = palette[3 * k + 1]; rgba[j + 2] = palette[3 * k + 2];
        rgba[j + 3] = trns && k < trns.length ? trns[k] : 255;
        break;
      }
      default: break;
    }
  }
  return { ...hdr, rgba };
}

// The most frequent colour of a region (packed 0xRRGGBB).
export function dominantColor(img, { x0 = 0, y0 = 0, x1 = img.width, y1 = img.height } = {}) {
  const counts = new Map();
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const j = (y * img.width + x) * 4;
      const c = (img.rgba[j] << 16) | (img.rgba[j + 1] << 8) | img.rgba[j + 2];
      counts.set(c, (counts.get(c) || 0) + 1);
    }
  }
  let best = 0, bestN = -1;
  for (const [c, n] of counts) if (n > bestN) { best = c; bestN = n; }
  return best;
}

// Pixels of a region that differ from colour bg by more than tol in some
// channel.
export function inkPixels(img, bg, tol, { x0 = 0, y0 = 0, x1 = img.width, y1 = img.height } = {}) {
  const br = (bg >> 16) & 0xff, bgc = (bg >> 8) & 0xff, bb = bg & 0xff;
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const j = (y * img.width + x) * 4;
      if (Math.abs(img.rgba[j] - br) > tol || Math.abs(img.rgba[j + 1] - bgc) > tol
        || Math.abs(img.rgba[j + 2] - bb) > tol) n++;
    }
  }
  return n;
}

export function distinctColors(img) {
  const s = new Set();
  for (let j = 0; j < img.rgba.length; j += 4) {
    s.add((img.rgba[j] << 16) | (img.rgba[j + 1] << 8) | img.rgba[j + 2]);
  }
  return s.size;
}

export const hex = (c) => `#${c.toString(16).padStart(6, '0')}`;
