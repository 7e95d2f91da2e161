// Fuzz target: the frame decoder and the link handshake (transport/frame.hpp,
// transport/handshake.hpp), as a link runs them before a peer has authenticated.
//
//   u8 mode | u16 max payload | rest
//
// mode bit 0 clear: `rest` is raw bytes from the network, fed to a FrameDecoder in pieces
// of the sizes its first bytes name; every frame decoded goes to a handshake.
// mode bit 0 set: `rest` is a list of (u8 type, blob payload) frames that the target frames
// and seals itself (so the handshake's own parsing is reached), fed the same way.
// mode bit 1 picks the handshake's role (server, or client that sent its hello).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_input.hpp"
#include "transport/frame.hpp"
#include "transport/handshake.hpp"

namespace {

using namespace deltacrdt;
using namespace deltacrdt::fuzz;
using namespace deltacrdt::transport;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzReader in(data, size);
  const std::uint8_t mode = in.u8();
  const std::size_t max_payload = in.u16();
  std::string stream;
  if ((mode & 1) == 0) {
    stream = std::string(in.rest());
  } else {
    while (!in.empty()) {
      const auto type = static_cast<FrameType>(in.u8());
      append_frame(stream, type, in.blob());
    }
  }
  const auto role = (mode & 2) != 0 ? Handshake::Role::client : Handshake::Role::server;
  Handshake hs(role, HandshakeConfig{"fuzz", "self", 7, "fuzz-secret-0123456789"});
  (void)hs.start();
  FrameDecoder decoder(max_payload);
  FuzzReader cuts(stream);
  std::size_t at = 0;
  std::size_t frames = 0;
  bool failed = false;
  while (at < stream.size() && !failed) {
    std::size_t n = 1 + cuts.u8();
    if (n > stream.size() - at) n = stream.size() - at;
    decoder.feed(std::string_view(stream).substr(at, n));
    at += n;
    for (;;) {
      auto next = decoder.next();
      if (!next) {
        failed = true;
        require(!decoder.next(), "a decoder error is final");
        break;
      }
      if (!*next) break;
      const Frame& f = **next;
      require(f.payload.size() <= max_payload, "no frame beyond the bound is decoded");
      ++frames;
      if (hs.state() == Handshake::State::pending) (void)hs.on_frame(f);
    }
    require(decoder.buffered() <= kFrameHeaderBytes + max_payload + kFrameTrailerBytes + n,
            "the decoder holds at most one frame and what was just fed");
  }
  require(hs.state() != Handshake::State::done, "no handshake completes without the secret's MACs");
  (void)frames;
  return 0;
}
