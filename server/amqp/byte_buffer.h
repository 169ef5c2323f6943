// Big-endian readers and writers for AMQP wire data.
//
// ByteReader walks a borrowed byte range. Every read is bounds-checked: reading past the end
// yields a zero value and makes the reader permanently !ok(), so a decoder can read a whole
// structure and check once at the end. Views returned by ReadShortStr/ReadLongStr/ReadBytes
// point into the borrowed range and live only as long as it does.
//
// ByteWriter appends to a caller-owned std::string; PatchU32 back-fills a length written earlier.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>


namespace warren::amqp {

class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return pos_ == data_.size(); }
  size_t position() const { return pos_; }
  // Marks the input malformed, e.g. when a decoded value is out of range.
  void Fail() { ok_ = false; pos_ = data_.size(); }

  uint8_t ReadU8() { return static_cast<uint8_t>(ReadBE<1>()); }
  uint16_t ReadU16() { return static_cast<uint16_t>(ReadBE<2>()); }
  uint32_t ReadU32() { return static_cast<uint32_t>(ReadBE<4>()); }
  uint64_t ReadU64() { return ReadBE<8>(); }

  std::string_view ReadBytes(size_t n) {
    if (!ok_ || remaining() < n) {
      Fail();
      return {};
    }
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string_view ReadShortStr() { return ReadBytes(ReadU8()); }
  std::string_view ReadLongStr() {
    uint32_t n = ReadU32();
    return ReadBytes(n);
  }

 private:
  template <int N>
  uint64_t ReadBE() {
    if (!ok_ || remaining() < N) {
      Fail();
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < N; ++i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += N;
    return v;
  }

  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  size_t size() const { return out_.size(); }
  void WriteU8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void WriteU16(uint16_t v) { WriteBE<2>(v); }
  void WriteU32(uint32_t v) { WriteBE<4>(v); }
  void WriteU64(uint64_t v) { WriteBE<8>(v); }
  void WriteBytes(std::string_view b) { out_.append(b); }
  // Longer input is cut at 255 bytes: names are validated before they get here, but a reply
  // text that quotes a client's names (a 255-byte queue name in a 405's sentence) may be longer.
  void WriteShortStr(std::string_view s) {
    if (s.size() > 255) s = s.substr(0, 255);
    WriteU8(static_cast<uint8_t>(s.size()));
    out_.append(s);
  }
  void WriteLongStr(std::string_view s) {
    WriteU32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  // Overwrites 4 bytes at `offset` (a length placeholder written earlier) with v.
  void PatchU32(size_t offset, uint32_t v) {
    for (int i = 0; i < 4; ++i) out_[offset + i] = static_cast<char>(v >> (24 - 8 * i));
  }

 private:
  template <int N>
  void WriteBE(uint64_t v) {
    char b[N];
    for (int i = 0; i < N; ++i) b[i] = static_cast<char>(v >> (8 * (N - 1 - i)));
    out_.append(b, N);
  }

  std::string& out_;
};

}  // namespace warren::amqp
