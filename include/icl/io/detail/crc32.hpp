/// @file
/// CRC-32 (ISO-HDLC / IEEE 802.3: reflected polynomial 0xEDB88320, initial value and final XOR
/// 0xFFFFFFFF), the checksum of zlib.crc32, gzip and PNG, so that Python computes the same value with
/// the standard library alone (docs/io.md, "Checksums"). Table-driven, one byte at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace icl::io::detail {

inline const std::array<std::uint32_t, 256>& crc32_table() {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

/// CRC-32 of `n` bytes at `data`, continuing from `crc` (0 for a fresh checksum), as
/// zlib.crc32(data, crc). crc32("123456789") = 0xCBF43926.
inline std::uint32_t crc32(const unsigned char* data, std::size_t n, std::uint32_t crc = 0) {
  const auto& t = crc32_table();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = t[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace icl::io::detail
