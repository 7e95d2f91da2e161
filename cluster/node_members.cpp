// The member lifecycle of NodeImpl (node_impl.hpp; docs/node.md, "Member lifecycle"):
// removing members, spreading and persisting removal records, refusing removed members,
// and automatic removal after a long time down.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cluster/node_impl.hpp"
#include "cluster/storage_format.hpp"

namespace deltacrdt {

namespace {
std::vector<ReplicaId> replica_ids(const std::vector<wire::HostedReplica>& replicas) {
  std::vector<ReplicaId> ids;
  for (const auto& r : replicas) ids.push_back(r.id);
  return ids;
}
}  // namespace

void NodeImpl::load_removed() {
  if (options_.data_dir.empty()) return;
  const std::filesystem::path path = std::filesystem::path(options_.data_dir) / kRemovedFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  const std::string bytes = storage_detail::read_file(path);
  RemovedMembers loaded({options_.max_removed_members, options_.forget_removed_after});
  if (auto why = RemovedMembers::decode_file(bytes, loaded)) {
    // Refusing to start is safer than starting without: a removed member's data could
    // come back meanwhile. The other members hold the same records and gossip them back,
    // so an operator may delete the file.
    throw StorageError(path.string() + ": " + *why +
                       " (the removal records of this node; delete the file to learn them "
                       "again from the other members)");
  }
  const std::uint64_t now = wall_clock_ms();
  for (const RemovedMember& r : loaded.records()) removed_.add(r, now);
}

void NodeImpl::persist_removed() {
  if (options_.data_dir.empty()) return;
  if (!storage_detail::write_atomically(options_.data_dir, kRemovedFile, removed_.encode_file())) {
    log_->log(LogLevel::error, "removed_members_not_saved",
              {{"node", options_.name},
               {"path", (std::filesystem::path(options_.data_dir) / kRemovedFile).string()}});
  }
}

std::vector<MemberInfo> NodeImpl::members() const {
  std::lock_guard lock(mu_);
  std::vector<MemberInfo> out;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [n, m] : table_.members()) {
    out.push_back({n, m.address, alive(m, now) ? MemberInfo::Status::up : MemberInfo::Status::down, 0});
  }
  for (const RemovedMember& r : removed_.records()) {
    if (table_.members().contains(r.name)) continue;  // rejoined, wiped: a new member
    auto same = std::find_if(out.begin(), out.end(), [&](const MemberInfo& i) { return i.name == r.name; });
    if (same == out.end()) {
      out.push_back({r.name, "", MemberInfo::Status::removed, r.removed_at_ms});
    } else {
      same->removed_at_ms = std::max(same->removed_at_ms, r.removed_at_ms);  // the latest
    }
  }
  std::sort(out.begin(), out.end(),
            [](const MemberInfo& a, const MemberInfo& b) { return a.name < b.name; });
  return out;
}

bool NodeImpl::removed() const {
  std::lock_guard lock(mu_);
  return self_removed_;
}

bool NodeImpl::remove_member(const std::string& name) {
  std::vector<MemberEvent> events;
  {
    std::lock_guard lock(mu_);
    if (name == options_.name) {
      throw std::invalid_argument("a node cannot remove itself: stop it, then remove '" + name +
                                  "' on another member");
    }
    if (!table_.members().contains(name)) {
      const bool recorded = std::any_of(removed_.records().begin(), removed_.records().end(),
                                        [&](const RemovedMember& r) { return r.name == name; });
      if (recorded) return false;
      throw std::invalid_argument("no member named '" + name + "' is known to this node");
    }
    remove_locked(name, "operator", events);
  }
  notify(events);
  return true;
}

void NodeImpl::remove_locked(const std::string& name, const std::string& why,
                             std::vector<MemberEvent>& events) {
  const Member& m = table_.members().at(name);
  RemovedMember record{name, m.incarnation, wall_clock_ms(), replica_ids(m.replicas)};
  log_->log(LogLevel::warn, "member_removed",
            {{"node", options_.name},
             {"member", name},
             {"by", why},
             {"replicas", std::to_string(record.replicas.size())}});
  learn_removals({std::move(record)}, events);
}

void NodeImpl::learn_removals(std::vector<RemovedMember> records,
                              std::vector<MemberEvent>& events) {
  const std::uint64_t now = wall_clock_ms();
  std::vector<RemovedMember> fresh;
  for (RemovedMember& r : records) {
    // What this node knows of that process adds to the record: a member removed by a node
    // that never linked to it is named by its replica ids once any node that did learns
    // of it, and so its data is refused when it comes back.
    auto known = table_.members().find(r.name);
    if (known != table_.members().end() && known->second.incarnation == r.incarnation) {
      for (const auto& h : known->second.replicas) r.replicas.push_back(h.id);
    }
    if (!removed_.add(r, now)) continue;
    // As stored: merged with what this node had, ids sorted and unique.
    if (const RemovedMember* stored = removed_.find(r.name, r.incarnation)) fresh.push_back(*stored);
  }
  if (fresh.empty()) return;
  for (const RemovedMember& r : fresh) apply_removal(r, events);
  persist_removed();
  tell_replicas_removed();
  // Passed on to every link (the links' peers pass on what is new to them): a removal
  // reaches every member, like membership itself.
  broadcast_gossip(std::move(fresh));
  update_neighbours();
}

bool NodeImpl::names_self(const RemovedMember& record) const {
  if (record.name == options_.name && record.incarnation == incarnation_) return true;
  return std::any_of(hosted_.begin(), hosted_.end(), [&](const auto& h) {
    return std::binary_search(record.replicas.begin(), record.replicas.end(), h.second->id);
  });
}

void NodeImpl::apply_removal(const RemovedMember& record, std::vector<MemberEvent>& events) {
  if (self_removed_) return;
  if (names_self(record)) {
    become_removed(record, events);
    return;
  }
  std::vector<std::string> gone;
  for (const auto& [n, m] : table_.members()) {
    const bool same_process = n == record.name && m.incarnation == record.incarnation;
    if (same_process ||
        std::any_of(m.replicas.begin(), m.replicas.end(), [&](const auto& h) {
          return std::binary_search(record.replicas.begin(), record.replicas.end(), h.id);
        })) {
      gone.push_back(n);
    }
  }
  for (const std::string& n : gone) {
    const Member& m = table_.members().at(n);
    if (m.link) tell_removed(m.link, record);
    table_.erase(n);
    events.push_back(MemberEvent{n, false, true});
  }
}

bool NodeImpl::refuse_removed(const transport::Link::Ptr& link, const wire::Gossip& g,
                              std::vector<MemberEvent>& events) {
  const RemovedMember* record =
      removed_.match(g.self.name, g.self.incarnation, replica_ids(g.replicas));
  if (record == nullptr) return false;
  ++removed_refused_;
  log_throttled(LogLevel::warn, "removed_member_refused",
                {{"node", options_.name},
                 {"peer", g.self.name},
                 {"removed_as", record->name},
                 {"reason", record->name == g.self.name && record->incarnation == g.self.incarnation
                                ? "the process that was removed"
                                : "it holds the data of a removed member"}});
  tell_removed(link, *record);
  auto m = table_.members().find(link->peer().node);
  if (m != table_.members().end() && m->second.link == link) {
    table_.erase(m->first);
    events.push_back(MemberEvent{link->peer().node, false, true});
  }
  return true;
}

void NodeImpl::tell_removed(const transport::Link::Ptr& link, const RemovedMember& record) {
  // Frames leave a link in order: the gossip arrives before the goodbye.
  link->send(transport::FrameType::gossip, wire::encode_gossip(own_gossip({record})));
  link->close("member removed from the cluster");
}

void NodeImpl::become_removed(const RemovedMember& record, std::vector<MemberEvent>& events) {
  self_removed_ = true;
  log_->log(LogLevel::error, "node_removed",
            {{"node", options_.name},
             {"removed_as", record.name},
             {"reason", "this node was removed from the cluster; it holds the removed member's "
                        "data and is refused by every member. Wipe its data directory and "
                        "restart it to join as a new member"}});
  for (const auto& [n, m] : table_.members())
    if (m.link) m.link->close("this node was removed from the cluster");
  events.push_back(MemberEvent{options_.name, false, true});
}

void NodeImpl::lifecycle_round(std::chrono::steady_clock::time_point now,
                               std::vector<MemberEvent>& events) {
  if (removed_.expire(wall_clock_ms()) != 0) {
    persist_removed();
    tell_replicas_removed();  // ids of expired records are no longer removed
  }
  if (self_removed_) return;
  std::vector<std::string> overdue;
  for (const auto& [n, m] : table_.members()) {
    Member& member = table_.member(n);
    if (alive(m, now)) {
      member.down_since = {};
      continue;
    }
    if (member.down_since == std::chrono::steady_clock::time_point{}) member.down_since = now;
    // Only members this node linked to (those only gossip named are forgotten instead),
    // and only while no gossip vouches for them either.
    if (options_.remove_after_down.count() > 0 && m.ever_linked &&
        now - member.down_since >= options_.remove_after_down &&
        !Table::heartbeat_fresh(m, now, member_timeout())) {
      overdue.push_back(n);
    }
  }
  for (const std::string& n : overdue) {
    if (!table_.members().contains(n)) continue;  // gone with an earlier one's record
    const auto down = std::chrono::duration_cast<std::chrono::milliseconds>(
        now - table_.members().at(n).down_since);
    remove_locked(n, "down for " + std::to_string(down.count()) + " ms", events);
  }
}

void NodeImpl::tell_replicas_removed(Hosted* one) {
  const std::vector<ReplicaId>& ids = removed_.replica_ids();
  for (auto& [name, h] : hosted_) {
    if (!h->ready || (one != nullptr && h.get() != one)) continue;
    if (h->replica.set_removed) h->replica.set_removed(ids);
  }
}

void NodeImpl::notify(const std::vector<MemberEvent>& events) {
  if (events.empty()) return;
  std::vector<std::function<void(const MemberEvent&)>> listeners;
  {
    std::lock_guard lock(mu_);
    listeners = listeners_;
  }
  for (const MemberEvent& e : events)
    for (auto& cb : listeners) cb(e);
}

}  // namespace deltacrdt
