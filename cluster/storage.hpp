// Durable storage of one replica: its id, its state X and its delta sequence number c, kept
// as a write-ahead log of deltas plus snapshots of the whole state (docs/storage-format.md).
//
// Storage is an interface so the replication engine can run on a file-backed store
// (FileStorage, cluster/file_storage.hpp) or an in-memory one (MemoryStorage, for tests and
// for replicas that need no durability). A store holds encoded bytes only; the replica
// decodes. Not thread-safe: one owner (the replica's strand) calls it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crdt/dot.hpp"
#include "base/error.hpp"

namespace deltacrdt {

// How appends reach the disk.
enum class FsyncPolicy {
  always,   // every append is fsynced before append() returns
  batched,  // appends are written at once and fsynced by sync(): concurrent writers share it
  never,    // the OS decides (a crash of the machine may lose recent appends)
};

// What a store recovered: the replica id, the newest snapshot (encoded state, or empty for
// none) with its sequence number, and the deltas logged after it, in order.
struct Recovered {
  ReplicaId id = 0;
  std::string snapshot;            // encode(T) bytes; empty: start from bottom
  std::uint64_t snapshot_seq = 0;  // c when the snapshot was taken
  struct Delta {
    std::uint64_t seq = 0;  // the replica's sequence number c just after this delta
    std::string bytes;      // encode(T) of the delta
  };
  std::vector<Delta> deltas;
  // Bytes dropped at the end of the log: a record torn or corrupted by a crash mid-write.
  std::uint64_t torn_bytes = 0;

  // c after replaying: the next sequence number to assign.
  std::uint64_t next_seq() const {
    return deltas.empty() ? snapshot_seq : std::max(snapshot_seq, deltas.back().seq);
  }
};

class Storage {
 public:
  virtual ~Storage() = default;
  // The replica id this store belongs to (fixed when the store was created).
  virtual ReplicaId id() const = 0;
  // Logs a delta joined into the state; `seq` is the replica's sequence number c just after
  // it (never decreasing across calls: a delta that was not buffered leaves c as it was).
  // Durable on return under FsyncPolicy::always; under `batched` once sync() returns.
  virtual Result<void> append(std::uint64_t seq, std::string_view delta) = 0;
  // Makes every append so far durable (one fsync for all of them).
  virtual Result<void> sync() = 0;
  // Snapshots in three steps, so the slow part can run off the owner's thread while appends
  // continue: begin_snapshot(seq) - seq is c of the state being snapshotted, which holds
  // every delta appended so far - returns a writer; the writer, called once on any thread,
  // writes the encoded state durably and atomically; finish_snapshot(written), back on the
  // owner's thread, drops the log records the snapshot holds. A crash at any point leaves
  // either the old snapshot with the whole log or the new snapshot with the log after it.
  // One snapshot at a time.
  using SnapshotWriter = std::function<Result<void>(std::string_view state)>;
  virtual Result<SnapshotWriter> begin_snapshot(std::uint64_t seq) = 0;
  virtual void finish_snapshot(bool written) = 0;
  // All three steps at once.
  Result<void> snapshot(std::uint64_t seq, std::string_view state) {
    Result<SnapshotWriter> writer = begin_snapshot(seq);
    if (!writer) return writer.error();
    Result<void> r = (*writer)(state);
    finish_snapshot(static_cast<bool>(r));
    return r;
  }
  // Bytes the log holds since the last snapshot (to decide when to snapshot).
  virtual std::uint64_t log_bytes() const = 0;
  // Between begin_snapshot and finish_snapshot: a function, callable once on any thread
  // while appends continue, that reads back what the snapshot must hold - the previous
  // snapshot and the deltas logged before begin_snapshot - so the state can be rebuilt
  // (recover_state) and encoded away from the owner's thread. Null when the store cannot.
  using SnapshotBasis = std::function<Result<Recovered>()>;
  virtual SnapshotBasis snapshot_basis() { return {}; }
};

// Keeps everything in memory: survives a replica's restart within a process (tests, the
// simulator), not a process's.
class MemoryStorage final : public Storage {
 public:
  explicit MemoryStorage(ReplicaId id) : id_(id) {}
  ReplicaId id() const override { return id_; }
  Result<void> append(std::uint64_t seq, std::string_view delta) override {
    if (seq < std::max(snapshot_seq_, log_.empty() ? 0 : log_.back().seq)) return Errc::corrupt;
    log_.push_back({seq, std::string(delta)});
    log_bytes_ += delta.size();
    return {};
  }
  Result<void> sync() override { return {}; }
  Result<SnapshotWriter> begin_snapshot(std::uint64_t seq) override {
    if (pending_ || (!log_.empty() && seq < log_.back().seq)) return Errc::corrupt;
    pending_ = std::make_shared<std::string>();
    pending_seq_ = seq;
    return SnapshotWriter([out = pending_](std::string_view state) -> Result<void> {
      *out = std::string(state);
      return {};
    });
  }
  void finish_snapshot(bool written) override {
    auto done = std::exchange(pending_, nullptr);
    if (!written || !done) return;
    snapshot_ = std::move(*done);
    snapshot_seq_ = pending_seq_;
    std::erase_if(log_, [&](const Recovered::Delta& d) { return d.seq < snapshot_seq_; });
    log_bytes_ = 0;
    for (const auto& d : log_) log_bytes_ += d.bytes.size();
  }
  std::uint64_t log_bytes() const override { return log_bytes_; }
  SnapshotBasis snapshot_basis() override {
    if (!pending_) return {};
    Recovered r{id_, snapshot_, snapshot_seq_, {}, 0};
    for (const auto& d : log_)
      if (d.seq <= pending_seq_) r.deltas.push_back(d);
    return [r = std::move(r)]() -> Result<Recovered> { return r; };
  }
  Recovered recover() const { return Recovered{id_, snapshot_, snapshot_seq_, log_, 0}; }

 private:
  ReplicaId id_;
  std::string snapshot_;
  std::uint64_t snapshot_seq_ = 0;
  std::vector<Recovered::Delta> log_;
  std::uint64_t log_bytes_ = 0;
  std::shared_ptr<std::string> pending_;  // the snapshot being written, if any
  std::uint64_t pending_seq_ = 0;
};

}  // namespace deltacrdt
