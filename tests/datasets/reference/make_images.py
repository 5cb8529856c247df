"""Writes test images with Debian's python3-pil and the reference pixels PIL decodes from them.

Usage: python3 make_images.py OUTDIR

OUTDIR/manifest.txt lists one case a line: "<name> <file> <expect>" where expect is
  ok      -> OUTDIR/<name>.ppm holds ImageOps.exif_transpose(Image.open(file)).convert("RGB")
  error   -> the file is unreadable (truncated/garbage): the decoder must raise, naming the file
Crop references (DiT's center_crop_arr, and PIL crop+resize) are listed as
  "<name> <file> center <R>"            -> OUTDIR/<name>.ppm
  "<name> <file> crop_resize <top> <left> <h> <w> <R> <filter>" -> OUTDIR/<name>.ppm
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

out = sys.argv[1]
rng = np.random.default_rng(1234)
manifest = []


def texture(w, h, channels=3):
    """Smooth gradients + blobs + noise: something JPEG has to work for."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        fx, fy = rng.uniform(0.01, 0.08, 2)
        p = 127 + 60 * np.sin(x * fx + c) * np.cos(y * fy - c) + 40 * (x / max(w - 1, 1)) - 20 * (y / max(h - 1, 1))
        p += rng.normal(0, 12, (h, w))
        planes.append(p)
    a = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    # An asymmetric marker (a bright block in the top-left quadrant) so rotations/flips are visible.
    a[h // 8: h // 8 + max(h // 6, 2), w // 10: w // 10 + max(w // 4, 2)] = 250
    return a


def reference(name, path):
    im = Image.open(path)
    if im.mode in ("I", "I;16", "I;16B"):
        # 16-bit grayscale PNG: PIL opens it as "I" and convert("RGB") clips to 0..255. The decoder
        # keeps the high byte instead (the image as it is meant); this is its reference.
        im = ImageOps.exif_transpose(im)
        a = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        rgb = Image.fromarray(np.stack([a, a, a], -1), "RGB")
    else:
        rgb = ImageOps.exif_transpose(im).convert("RGB")
    rgb.save(os.path.join(out, name + ".ppm"))
    return rgb


def case(name, filename, writer):
    path = os.path.join(out, filename)
    writer(path)
    reference(name, path)
    manifest.append(f"{name} {filename} ok")


def bad(name, filename, data):
    with open(os.path.join(out, filename), "wb") as f:
        f.write(data)
    manifest.append(f"{name} {filename} error")


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png16(path, a):
    """16-bit RGB/RGBA PNG (PIL cannot write those), big-endian samples, filter 0."""
    h, w, c = a.shape
    color = {3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color, 0, 0, 0))
    data += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def exif_bytes(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()


# JPEG: several sizes and aspect ratios, chroma subsampling variants.
for (w, h, sub) in [(320, 240, 2), (200, 500, 2), (1000, 300, 2), (257, 129, 0), (64, 64, 1), (17, 9, 2)]:
    img = Image.fromarray(texture(w, h))
    case(f"jpeg_{w}x{h}_s{sub}", f"rgb_{w}x{h}_s{sub}.jpg", lambda p, img=img, sub=sub: img.save(p, quality=90, subsampling=sub))

case("jpeg_gray", "gray.jpg", lambda p: Image.fromarray(texture(300, 200, 1)[..., 0], "L").save(p, quality=85))
case("jpeg_cmyk", "cmyk.jpg", lambda p: Image.fromarray(texture(240, 180, 4), "CMYK").save(p, quality=90))
case("jpeg_progressive", "progressive.jpg",
     lambda p: Image.fromarray(texture(400, 300)).save(p, quality=88, progressive=True))
for o in range(1, 9):
    case(f"jpeg_exif_o{o}", f"exif_o{o}.jpg",
         lambda p, o=o: Image.fromarray(texture(180, 120)).save(p, quality=92, exif=exif_bytes(o)))
# A PNG hiding behind a .JPEG name (ImageNet has some): the format comes from the bytes.
case("png_named_jpeg", "disguised.JPEG", lambda p: Image.fromarray(texture(50, 40)).save(p, format="PNG"))

# PNG: RGB, RGBA, gray, gray+alpha, 1-bit, palette (with and without transparency), 16-bit.
case("png_rgb", "rgb.png", lambda p: Image.fromarray(texture(150, 100)).save(p))
case("png_rgba", "rgba.png", lambda p: Image.fromarray(texture(150, 100, 4), "RGBA").save(p))
case("png_gray", "gray.png", lambda p: Image.fromarray(texture(90, 70, 1)[..., 0], "L").save(p))
case("png_la", "la.png", lambda p: Image.fromarray(texture(90, 70, 2), "LA").save(p))
case("png_1bit", "bilevel.png", lambda p: Image.fromarray(texture(90, 70, 1)[..., 0], "L").convert("1").save(p))
case("png_palette", "palette.png", lambda p: Image.fromarray(texture(120, 80)).quantize(64).save(p))
case("png_palette_trns", "palette_trns.png",
     lambda p: Image.fromarray(texture(120, 80)).quantize(16).save(p, transparency=3))
case("png_rgb16", "rgb16.png", lambda p: write_png16(p, rng.integers(0, 65536, (60, 80, 3), dtype=np.uint16)))
case("png_rgba16", "rgba16.png", lambda p: write_png16(p, rng.integers(0, 65536, (60, 80, 4), dtype=np.uint16)))
case("png_gray16", "gray16.png",
     lambda p: Image.fromarray(rng.integers(0, 65536, (50, 70), dtype=np.uint16).astype(np.uint16), "I;16").save(p))
case("png_exif_o6", "exif_o6.png", lambda p: Image.fromarray(texture(80, 50)).save(p, exif=exif_bytes(6)))

# WebP: lossy RGB, lossless RGBA, with EXIF orientation.
case("webp_lossy", "lossy.webp", lambda p: Image.fromarray(texture(160, 120)).save(p, quality=80))
case("webp_lossless_rgba", "lossless_rgba.webp",
     lambda p: Image.fromarray(texture(100, 90, 4), "RGBA").save(p, lossless=True))
case("webp_exif_o8", "exif_o8.webp", lambda p: Image.fromarray(texture(100, 60)).save(p, quality=90, exif=exif_bytes(8)))

# Unreadable inputs.
buf = io.BytesIO()
Image.fromarray(texture(320, 240)).save(buf, "JPEG", quality=90)
j = buf.getvalue()
bad("truncated_jpeg", "truncated.jpg", j[: len(j) * 6 // 10])
buf = io.BytesIO()
Image.fromarray(texture(320, 240)).save(buf, "JPEG", quality=90, progressive=True)
j = buf.getvalue()
bad("truncated_progressive", "truncated_progressive.jpg", j[: len(j) // 2])
buf = io.BytesIO()
Image.fromarray(texture(100, 100)).save(buf, "PNG")
bad("truncated_png", "truncated.png", buf.getvalue()[: len(buf.getvalue()) // 2])
buf = io.BytesIO()
Image.fromarray(texture(100, 100)).save(buf, "WEBP", quality=80)
bad("truncated_webp", "truncated.webp", buf.getvalue()[: len(buf.getvalue()) // 2])
bad("garbage", "garbage.jpg", b"this is not an image at all")
bad("empty", "empty.png", b"")


# Crop references: DiT's center_crop_arr (ADM), verbatim.
def center_crop_arr(pil_image, image_size):
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return Image.fromarray(arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size])


for (src, r) in [("rgb_320x240_s2.jpg", 64), ("rgb_320x240_s2.jpg", 256), ("rgb_1000x300_s2.jpg", 64),
                 ("rgb_200x500_s2.jpg", 96), ("rgb_257x129_s0.jpg", 32), ("exif_o6.jpg", 48),
                 ("cmyk.jpg", 90), ("rgb_17x9_s2.jpg", 8)]:
    name = f"center_{os.path.splitext(src)[0]}_{r}"
    img = ImageOps.exif_transpose(Image.open(os.path.join(out, src))).convert("RGB")
    center_crop_arr(img, r).save(os.path.join(out, name + ".ppm"))
    manifest.append(f"{name} {src} center {r}")

filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "box": Image.BOX}
for (src, top, left, h, w, r, f) in [("rgb_320x240_s2.jpg", 10, 20, 150, 200, 64, "bilinear"),
                                     ("rgb_320x240_s2.jpg", 0, 0, 37, 29, 64, "bilinear"),
                                     ("rgb_1000x300_s2.jpg", 50, 400, 250, 300, 100, "bicubic"),
                                     ("rgb_200x500_s2.jpg", 100, 30, 300, 160, 33, "box")]:
    name = f"crop_resize_{os.path.splitext(src)[0]}_{top}_{left}_{h}_{w}_{r}_{f}"
    img = ImageOps.exif_transpose(Image.open(os.path.join(out, src))).convert("RGB")
    img.crop((left, top, left + w, top + h)).resize((r, r), filters[f]).save(os.path.join(out, name + ".ppm"))
    manifest.append(f"{name} {src} crop_resize {top} {left} {h} {w} {r} {f}")

# Sanity: PIL itself refuses the truncated JPEG (so "error" is what PIL says too).
try:
    Image.open(os.path.join(out, "truncated.jpg")).load()
    print("note: PIL decoded truncated.jpg without error")
except OSError as e:
    print("PIL on truncated.jpg:", e)

with open(os.path.join(out, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
print(f"{len(manifest)} cases written to {out}")
