"""Generated image files for the data tests: good ones and every kind of bad one."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def noise(seed: int, size: int = 20, mode: str = "RGB") -> Image.Image:
    """A distinct random image (different seed, different bytes)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}.get(mode)
    shape = (size, size, channels) if channels else (size, size)
    return Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode)


def texture(seed: int, size: int = 96) -> Image.Image:
    """A smooth, photo-like random picture (1/f^2 power spectrum per channel): unlike pixel
    noise, it keeps its look when resized or JPEG-compressed, as a photo does."""
    rng = np.random.default_rng(seed)
    freq = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    freq[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / freq
        plane = np.real(np.fft.ifft2(spectrum))
        channels.append((plane - plane.min()) / np.ptp(plane) * 255)
    return Image.fromarray(np.stack(channels, axis=-1).astype(np.uint8))


def save(img: Image.Image, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)
    return path


def good_class(root: Path, label: str, n: int, seed: int, size: int = 20) -> None:
    """`n` distinct PNGs in root/label/."""
    for i in range(n):
        save(noise(seed * 1000 + i, size), root / label / f"{label}_{i:03d}.png")


def truncated(path: Path, fmt: str) -> Path:
    buf = io.BytesIO()
    noise(7, 64).save(buf, fmt)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height RGB pixels: a decompression bomb's header, a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A tiny PNG whose header claims side x side pixels (PIL refuses it at open)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    data += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def palette_with_transparency(path: Path) -> Path:
    img = Image.new("P", (20, 20), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    img.paste(1, (0, 0, 10, 20))
    return save(img, path, transparency=0)


def sixteen_bit(path: Path) -> Path:
    arr = np.full((20, 20), 65535, dtype=np.uint16)
    arr[:, :10] = 0
    return save(Image.fromarray(arr), path)


def exif_rotated(path: Path) -> Path:
    img = noise(11, 20).resize((30, 20))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    return save(img, path, exif=exif)


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (20, 20), c).convert("P") for c in ("red", "green", "blue")]
    return save(frames[0], path, save_all=True, append_images=frames[1:], duration=100)


def tree_digest(root: Path) -> str:
    """sha256 over a tree's names, file bytes, modes, mtimes and symlink targets."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            digest.update(f"{p.relative_to(root)}|{st.st_mode}|{st.st_mtime_ns}".encode())
            if p.is_symlink():
                digest.update(os.readlink(p).encode())
            elif p.is_file():
                digest.update(p.read_bytes())
    return digest.hexdigest()
