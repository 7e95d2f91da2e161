// StreamingDecoder<T>: decodes the bytes of encode<T>(x) handed over in consecutive pieces,
// each as it arrives, so that decoding a large value overlaps its transfer instead of
// starting after the last piece. The result equals decode<T> of all the pieces joined.
//
// For types with a T::PieceLoader (one that loads a payload a unit at a time and throws
// cereal::Exception, unchanged, when a unit is cut short; see AWLWWMap). Nothing decoded is
// handed out before finish() has checked the checksum over every byte and T's invariants.
// Malformed bytes give the same kind of error as decode<T>, though not always the same code
// (the payload is parsed before the checksum can be checked).
//
// Cost: every byte is parsed once, except that a unit cut by the end of a piece is parsed
// again when more bytes are there; attempts wait for the unparsed bytes to double, so a
// unit larger than the pieces costs O(its size) overall, not O(size x pieces). Memory: the
// value under construction plus the unparsed tail. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <xxhash.h>

#include "crdt/archive.hpp"
#include "crdt/codec.hpp"
#include "base/error.hpp"

namespace deltacrdt {

template <class T>
concept StreamDecodable = requires {
  typename T::PieceLoader;
};

template <class T>
class StreamingDecoder {
  static_assert(StreamDecodable<T>, "StreamingDecoder needs T::PieceLoader");

 public:
  StreamingDecoder() : hash_(XXH3_createState(), &XXH3_freeState) {
    if (!hash_ || XXH3_64bits_reset(hash_.get()) == XXH_ERROR) throw std::bad_alloc();
  }

  // The next piece. An error is final: later calls return it too.
  Result<void> feed(std::string_view piece) {
    if (error_) return *error_;
    if (parsed_ >= kCompactAbove && parsed_ >= pending_.size() / 2) {
      pending_.erase(0, parsed_);  // keep only what is not decoded yet
      parsed_ = 0;
    }
    pending_.append(piece.data(), piece.size());
    if (!header_done_ && !read_header()) return error_ ? Result<void>(*error_) : Result<void>();
    if (pending_.size() - parsed_ >= retry_at_) parse();
    if (error_) return *error_;
    return {};
  }

  // After the last piece: the decoded value, or why the bytes are not a valid encoding.
  Result<T> finish() {
    if (error_) return *error_;
    if (!header_done_ && !read_header()) return error_ ? *error_ : Errc::truncated;
    parse();
    if (error_) return *error_;
    if (!complete_) return Errc::truncated;
    // Exactly the trailer must be left: the checksum of everything before it.
    if (pending_.size() - parsed_ != kEncodingTrailerBytes) return Errc::corrupt;
    if (detail::read_le64(pending_.data() + parsed_) != XXH3_64bits_digest(hash_.get())) {
      return Errc::bad_checksum;
    }
    T value = std::move(loader_).take();
    if (!detail::checked_after_decode(value)) return Errc::corrupt;
    return value;
  }

 private:
  bool read_header() {
    if (pending_.size() < kEncodingHeaderBytes) return false;
    const std::string_view header(pending_.data(), kEncodingHeaderBytes);
    if (std::memcmp(header.data(), kEncodingMagic.data(), kEncodingMagic.size()) != 0) {
      error_ = Errc::bad_magic;
      return false;
    }
    const auto u16 = [&](std::size_t at) {
      return static_cast<std::uint16_t>(static_cast<unsigned char>(header[at]) |
                                        (static_cast<unsigned char>(header[at + 1]) << 8));
    };
    if (u16(4) != static_cast<std::uint16_t>(T::kTypeTag)) {
      error_ = Errc::wrong_type;
      return false;
    }
    version_ = u16(6);
    if (!detail::readable_version<T>(version_)) {
      error_ = Errc::bad_version;
      return false;
    }
    consume(kEncodingHeaderBytes);
    header_done_ = true;
    return true;
  }

  // Parses whole units from the unparsed bytes, short of the last 8 (which may be the
  // trailer). A unit cut short is left for the next attempt.
  void parse() {
    const std::size_t available = pending_.size() - parsed_;
    if (available > kEncodingTrailerBytes && !complete_) {
      std::string_view window(pending_.data() + parsed_, available - kEncodingTrailerBytes);
      try {
        if (!marker_done_) {
          swap_ = ByteInputArchive::swap_for_marker(static_cast<std::uint8_t>(window[0]));
          marker_done_ = true;
          consume(1);
          window.remove_prefix(1);
        }
        ByteInputArchive ar(window, ByteInputArchive::Continuation{swap_, version_});
        std::size_t done = 0;
        try {
          while (!complete_) {
            if (loader_.load_next(ar)) {
              done = ar.consumed();
            } else {
              complete_ = true;
            }
          }
        } catch (const cereal::Exception&) {
          // Cut by the end of the bytes so far (finish() reports it if no more come).
        }
        consume(done);
      } catch (const std::length_error&) {
        error_ = Errc::too_large;
      } catch (const std::bad_alloc&) {
        error_ = Errc::too_large;
      } catch (const std::exception&) {
        error_ = Errc::corrupt;
      }
    }
    retry_at_ = 2 * (pending_.size() - parsed_);
  }

  void consume(std::size_t n) {
    XXH3_64bits_update(hash_.get(), pending_.data() + parsed_, n);
    parsed_ += n;
  }

  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> hash_;
  static constexpr std::size_t kCompactAbove = 64 * 1024;
  std::string pending_;  // bytes kept; [0, parsed_) are decoded and hashed
  std::size_t parsed_ = 0;
  std::size_t retry_at_ = 0;  // unparsed bytes needed before the next parse
  typename T::PieceLoader loader_;
  bool header_done_ = false;
  bool marker_done_ = false;
  bool swap_ = false;
  std::uint16_t version_ = 0;  // the envelope's format version
  bool complete_ = false;
  std::optional<Errc> error_;
};

}  // namespace deltacrdt
