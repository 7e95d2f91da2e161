// Frames and the link handshake (transport/frame.hpp, transport/handshake.hpp): round trips,
// byte-by-byte delivery, every kind of damage, random input, and the handshake's refusals.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cluster/wire.hpp"
#include "tests/property.hpp"
#include "transport/frame.hpp"
#include "transport/handshake.hpp"

using namespace deltacrdt;
using namespace deltacrdt::transport;

namespace {

// Decodes every frame in `bytes`; stops at the first error.
std::vector<Frame> decode_all(FrameDecoder& d, std::string_view bytes,
                              boost::system::error_code* error = nullptr) {
  d.feed(bytes);
  std::vector<Frame> out;
  for (;;) {
    auto r = d.next();
    if (!r) {
      if (error != nullptr) *error = r.error();
      return out;
    }
    if (!*r) return out;
    out.push_back(std::move(**r));
  }
}

}  // namespace

TEST_SUITE("transport.frame") {
  TEST_CASE("frames round-trip, whole or one byte at a time") {
    std::string wire;
    append_frame(wire, FrameType::sync, "hello");
    append_frame(wire, FrameType::heartbeat, "");
    append_frame(wire, FrameType::gossip, std::string(100000, 'x'));
    FrameDecoder whole;
    const auto frames = decode_all(whole, wire);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].type == FrameType::sync);
    CHECK(frames[0].payload == "hello");
    CHECK(frames[1].payload.empty());
    CHECK(frames[2].payload.size() == 100000);

    FrameDecoder trickle;
    std::vector<Frame> got;
    for (char c : wire) {
      for (auto& f : decode_all(trickle, std::string_view(&c, 1))) got.push_back(std::move(f));
    }
    REQUIRE(got.size() == 3);
    CHECK(got[2].payload == frames[2].payload);
    CHECK(trickle.buffered() == 0);
  }

  TEST_CASE("a length above the maximum is refused before its payload is buffered") {
    FrameDecoder d(1024);
    std::string header = make_frame(FrameType::sync, std::string(2000, 'y')).substr(0, 12);
    boost::system::error_code e;
    CHECK(decode_all(d, header, &e).empty());
    CHECK(e == Errc::too_large);
    CHECK(d.buffered() == 0);
    // The error is final.
    CHECK(decode_all(d, make_frame(FrameType::sync, "ok"), &e).empty());
    CHECK(e == Errc::too_large);
  }

  TEST_CASE("damaged frames are refused") {
    const std::string good = make_frame(FrameType::sync, "payload");
    const auto error_of = [](std::string bytes) {
      FrameDecoder d;
      boost::system::error_code e;
      const auto frames = decode_all(d, bytes, &e);
      return frames.empty() ? e : boost::system::error_code{};
    };
    std::string bad = good;
    bad[0] = 'X';
    CHECK(error_of(bad) == Errc::bad_magic);
    bad = good;
    bad[4] = 9;
    CHECK(error_of(bad) == Errc::bad_version);
    bad = good;
    bad[5] = 42;
    CHECK(error_of(bad) == Errc::corrupt);  // unknown type
    bad = good;
    bad[6] = 1;
    CHECK(error_of(bad) == Errc::corrupt);  // undefined flags
    bad = good;
    bad[14] ^= 1;
    CHECK(error_of(bad) == Errc::bad_checksum);
    // Truncated: not an error, just incomplete.
    FrameDecoder d;
    CHECK(decode_all(d, good.substr(0, good.size() - 1)).empty());
    CHECK(d.buffered() == good.size() - 1);
  }

  TEST_CASE("random bytes never crash the decoder and never yield a frame") {
    deltacrdt::testing::for_each_case(1, [](deltacrdt::testing::PropertyRng& rng) {
      std::string bytes;
      if (rng.chance(0.5)) bytes = make_frame(FrameType::sync, "prefix");  // a valid start
      const std::size_t n = rng.below(300);
      for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>(rng.below(256)));
      FrameDecoder d(4096);
      std::size_t at = 0;
      std::size_t frames = 0;
      while (at < bytes.size()) {
        const std::size_t take = 1 + rng.below(40);
        d.feed(std::string_view(bytes).substr(at, take));
        at += take;
        for (;;) {
          auto r = d.next();
          if (!r || !*r) break;
          ++frames;
        }
      }
      REQUIRE(frames <= 1 + n / 20);  // only the valid prefix, barring 2^-64 accidents
      REQUIRE(d.buffered() <= 4096 + 20);
    });
  }
}

TEST_SUITE("transport.handshake") {
  HandshakeConfig config(std::string node, std::string secret = "s3cret-s3cret-s3cret",
                         std::string cluster = "prod") {
    return HandshakeConfig{std::move(cluster), std::move(node), 7, std::move(secret)};
  }

  // Runs a handshake between two objects; returns the frame types that crossed.
  std::vector<FrameType> run(Handshake & client, Handshake & server) {
    std::vector<FrameType> seen;
    std::string to_server = client.start();
    std::string to_client = server.start();
    FrameDecoder at_server, at_client;
    for (int round = 0; round < 10 && (!to_server.empty() || !to_client.empty()); ++round) {
      for (auto& f : decode_all(at_server, std::exchange(to_server, {}))) {
        seen.push_back(f.type);
        to_client += server.on_frame(f);
      }
      for (auto& f : decode_all(at_client, std::exchange(to_client, {}))) {
        seen.push_back(f.type);
        to_server += client.on_frame(f);
      }
    }
    return seen;
  }

  TEST_CASE("matching secrets authenticate both sides") {
    Handshake client(Handshake::Role::client, config("a"));
    Handshake server(Handshake::Role::server, config("b"));
    const auto seen = run(client, server);
    CHECK(seen == std::vector<FrameType>{FrameType::hello, FrameType::hello_ack, FrameType::auth,
                                         FrameType::auth_ok});
    CHECK(client.done());
    CHECK(server.done());
    CHECK(client.peer().node == "b");
    CHECK(server.peer().node == "a");
    CHECK(server.peer().incarnation == 7);
  }

  TEST_CASE("a client with the wrong secret is refused by the server") {
    Handshake client(Handshake::Role::client, config("a", "wrong"));
    Handshake server(Handshake::Role::server, config("b"));
    run(client, server);
    // The client cannot verify the server's proof either, so it refuses first.
    CHECK(client.state() == Handshake::State::failed);
    CHECK(server.state() == Handshake::State::failed);
    CHECK_FALSE(server.done());
  }

  TEST_CASE("a client that does not verify cannot fake its proof") {
    Handshake client(Handshake::Role::client, config("a", "wrong"));
    Handshake server(Handshake::Role::server, config("b"));
    FrameDecoder at_server, at_client;
    auto hello = decode_all(at_server, client.start());
    auto ack = decode_all(at_client, server.on_frame(hello.at(0)));
    REQUIRE(ack.at(0).type == FrameType::hello_ack);
    // A forged auth: 32 bytes that are not the right MAC.
    deltacrdt::detail::ByteWriter w;
    w.bytes(std::string(32, 'z'));
    const auto reply = decode_all(at_server, server.on_frame(Frame{FrameType::auth, w.take()}));
    REQUIRE(reply.size() == 1);
    CHECK(reply[0].type == FrameType::refuse);
    CHECK(server.state() == Handshake::State::failed);
    CHECK(server.failure() == "authentication failed");
    CHECK(server.failure_code() == LinkError::authentication_failed);
  }

  TEST_CASE("a replayed handshake fails: the server's nonce is fresh") {
    // Record a successful exchange, then replay the client's frames to a new server.
    Handshake client(Handshake::Role::client, config("a"));
    Handshake server1(Handshake::Role::server, config("b"));
    FrameDecoder d1, d2, d3;
    const Frame hello = decode_all(d1, client.start()).at(0);
    const Frame ack = decode_all(d2, server1.on_frame(hello)).at(0);
    const Frame auth = decode_all(d3, client.on_frame(ack)).at(0);
    Handshake server2(Handshake::Role::server, config("b"));
    (void)server2.on_frame(hello);
    (void)server2.on_frame(auth);
    CHECK(server2.state() == Handshake::State::failed);
    CHECK(server1.on_frame(auth).size() > 0);
    CHECK(server1.done());
  }

  TEST_CASE("a different cluster name is refused") {
    Handshake client(Handshake::Role::client, config("a", "s3cret-s3cret-s3cret", "staging"));
    Handshake server(Handshake::Role::server, config("b"));
    run(client, server);
    CHECK(server.state() == Handshake::State::failed);
    CHECK(server.failure() == "cluster name mismatch");
    CHECK(server.failure_code() == LinkError::cluster_mismatch);
    CHECK(client.state() == Handshake::State::failed);
    // The client learns why from the code in the refuse frame, not from its words.
    CHECK(client.failure_code() == LinkError::cluster_mismatch);
  }

  TEST_CASE("a node that dials itself is told so by code, on both ends") {
    Handshake client(Handshake::Role::client, config("a"));
    Handshake server(Handshake::Role::server, config("a"));
    run(client, server);
    CHECK(server.failure_code() == LinkError::name_in_use);
    CHECK(client.failure_code() == LinkError::name_in_use);
    CHECK(is_self(client.failure_code()));
  }

  TEST_CASE("a peer of an older protocol is refused, and protocol 1's wordy refusals are understood") {
    // Its hello: protocol 2, then the fields later protocols still have.
    deltacrdt::detail::ByteWriter w;
    w.u64(2);
    w.bytes("prod");
    w.bytes("old");
    w.u64(3);
    w.bytes(std::string(32, 'n'));
    Handshake server(Handshake::Role::server, config("b"));
    FrameDecoder d;
    const auto reply = decode_all(d, server.on_frame(Frame{FrameType::hello, w.take()}));
    REQUIRE(reply.size() == 1);
    CHECK(reply[0].type == FrameType::refuse);
    CHECK(server.failure_code() == LinkError::unsupported_protocol);
    CHECK(server.failure() == "peer speaks handshake protocol 2, this node " +
                                  std::to_string(kHandshakeProtocol));
    // The refuse frame: the code (u16, little-endian), then the words.
    REQUIRE(reply[0].payload.size() > 2);
    CHECK(reply[0].payload[0] == 3);
    CHECK(reply[0].payload[1] == 0);
    // A protocol-1 peer refuses us in words alone: that is `refused`, words kept.
    Handshake client(Handshake::Role::client, config("a"));
    (void)client.start();
    (void)client.on_frame(Frame{FrameType::refuse, "unsupported protocol version"});
    CHECK(client.failure_code() == LinkError::refused);
    CHECK(client.failure() == "refused by peer (refused): unsupported protocol version");
  }

  TEST_CASE("frames out of order and malformed handshakes are refused") {
    Handshake server(Handshake::Role::server, config("b"));
    CHECK_FALSE(server.on_frame(Frame{FrameType::sync, "data"}).empty());  // refuse frame
    CHECK(server.state() == Handshake::State::failed);
    Handshake server2(Handshake::Role::server, config("b"));
    (void)server2.on_frame(Frame{FrameType::hello, "garbage"});
    CHECK(server2.failure() == "malformed hello");
    CHECK_THROWS_AS(Handshake(Handshake::Role::server, config("b", "")), std::invalid_argument);
  }
}

TEST_SUITE("transport.messages") {
  TEST_CASE("sync and gossip payloads round-trip") {
    // Every kind, each field distinct, so a field written in the wrong place shows.
    const SyncMessage messages[] = {
        DeltaBatch{1, 2, "delta"},
        DeltaAck{3, 4},
        StateChunk{5, 6, 7, 8, "chunk"},
        StateAck{9, 10, true},
        DigestOffer{11, 12, 13, "digests"},
        BucketChunk{14, 15, "entries"},
        DigestDone{16, 17},
        DigestAnswer{18, 19, DigestStatus::want_whole_state, "answer"},
    };
    for (const SyncMessage& m : messages) {
      const std::string bytes = wire::encode_sync("links", 10, 20, m);
      const auto e = wire::decode_sync(bytes);
      REQUIRE(e.has_value());
      CHECK(e->replica == "links");
      CHECK(e->from == 10);
      CHECK(e->to == 20);
      CHECK(e->msg == m);
      // wire_size counts what follows the name and the two ids.
      CHECK(bytes.size() == 8 + 5 + 16 + wire_size(m));
      // A kind byte past the last, or a status or flag out of range, is not a message.
      std::string bad = bytes;
      bad[8 + 5 + 16] = static_cast<char>(kLastSyncKind + 1);
      CHECK_FALSE(wire::decode_sync(bad).has_value());
    }
    std::string bad_flag = wire::encode_sync("r", 1, 2, StateAck{1, 2, true});
    bad_flag.back() = 2;
    CHECK_FALSE(wire::decode_sync(bad_flag).has_value());
    std::string bad_status = wire::encode_sync("r", 1, 2, DigestAnswer{1, 2, DigestStatus::ok, ""});
    bad_status[bad_status.size() - 9] = static_cast<char>(kLastDigestStatus + 1);
    CHECK_FALSE(wire::decode_sync(bad_status).has_value());
    wire::Gossip g;
    g.self = {"n1", "127.0.0.1:7000", 9};
    g.replicas = {{"links", 5}, {"hits", 6}};
    g.members = {{"n2", "10.0.0.2:7000", 1}};
    CHECK(wire::decode_gossip(wire::encode_gossip(g)) == g);
  }

  TEST_CASE("random and truncated payloads are rejected, never crash") {
    deltacrdt::testing::for_each_case(1, [](deltacrdt::testing::PropertyRng& rng) {
      const DeltaBatch m{0, 0, std::string(rng.below(50), 'p')};
      wire::Gossip g;
      g.self = {"n1", "a:1", 1};
      for (std::size_t i = 0; i < rng.below(4); ++i) g.replicas.push_back({"r", i});
      std::string bytes =
          rng.chance(0.5) ? wire::encode_sync("x", 1, 2, m) : wire::encode_gossip(g);
      // Truncate, flip bytes, or append garbage.
      const auto roll = rng.below(3);
      if (roll == 0 && !bytes.empty()) bytes.resize(rng.below(bytes.size()));
      if (roll == 1 && !bytes.empty())
        bytes[rng.below(bytes.size())] ^= static_cast<char>(1 + rng.below(255));
      if (roll == 2) bytes += std::string(1 + rng.below(9), static_cast<char>(rng.below(256)));
      // Whatever comes out must be well-formed; most of it is rejected.
      if (auto s = wire::decode_sync(bytes)) REQUIRE(s->replica.size() <= wire::kMaxName);
      if (auto d = wire::decode_gossip(bytes)) REQUIRE(!d->self.name.empty());
      // Pure noise.
      std::string noise(rng.below(200), '\0');
      for (char& c : noise) c = static_cast<char>(rng.below(256));
      (void)wire::decode_sync(noise);
      (void)wire::decode_gossip(noise);
    });
  }
}
