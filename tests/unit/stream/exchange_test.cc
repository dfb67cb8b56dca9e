// A scripted sender/receiver exchange over an in-memory pipe, Boost.Beast
// fail_count style: the n-th I/O operation (reads and writes of both ends,
// counted together) fails, for every n until the exchange needs fewer
// operations than n. Every operation also moves only a short, random number
// of bytes. After a failure both ends drop the connection and the sender
// reconnects; the receiver's durable store survives. At the end the store
// must hold every item exactly once, in order, byte for byte: no frame lost,
// duplicated or corrupted, and no acknowledged item lost.
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "stream/auth.h"
#include "stream/frame_codec.h"
#include "stream/messages.h"
#include "test_frames.h"
#include "stream/validator.h"

namespace mt::stream {
namespace {

using testing::FrameSpec;
using testing::SameFrame;

constexpr char kStream[] = "vm-0042";
constexpr char kKey[] = "stream-credential";

// Makes the n-th operation fail (n counted from 1; 0 never fails).
class FailCount {
 public:
  explicit FailCount(uint64_t n) : n_(n) {}
  Status Step(const char* op) {
    if (++count_ != n_) return Status::Ok();
    fired_ = true;
    return Status(Errc::kIoError, std::string("fail_count: ") + op + " #" + std::to_string(count_));
  }
  bool fired() const { return fired_; }
  uint64_t count() const { return count_; }

 private:
  uint64_t n_;
  uint64_t count_ = 0;
  bool fired_ = false;
};

// One connection: a byte queue each way. Each operation moves 1..max_chunk
// bytes (fewer if fewer are asked for or available).
struct Pipe {
  FailCount* fail;
  std::mt19937* rng;
  size_t max_chunk;
  std::deque<uint8_t> to_receiver, to_sender;

  size_t Chunk(size_t n) { return std::min<size_t>(n, 1 + (*rng)() % max_chunk); }

  Result<size_t> WriteSome(std::deque<uint8_t>* q, const uint8_t* p, size_t n) {
    MT_RETURN_IF_ERROR(fail->Step("write"));
    const size_t k = Chunk(n);
    q->insert(q->end(), p, p + k);
    return k;
  }
  Result<size_t> ReadSome(std::deque<uint8_t>* q, uint8_t* p, size_t n) {
    MT_RETURN_IF_ERROR(fail->Step("read"));
    const size_t k = Chunk(std::min(n, q->size()));
    std::copy(q->begin(), q->begin() + static_cast<ptrdiff_t>(k), p);
    q->erase(q->begin(), q->begin() + static_cast<ptrdiff_t>(k));
    return k;
  }
};

// One end of a connection: whole frames over short reads and writes.
class Endpoint {
 public:
  Endpoint(Pipe* pipe, std::deque<uint8_t>* out, std::deque<uint8_t>* in)
      : pipe_(pipe), out_(out), in_(in) {}

  Status Send(const FrameHeader& h, const std::vector<uint8_t>& payload = {}) {
    std::vector<uint8_t> bytes;
    MT_RETURN_IF_ERROR(FrameEncoder().Encode(h, payload.data(), payload.size(), &bytes));
    for (size_t pos = 0; pos < bytes.size();) {
      MT_ASSIGN_OR_RETURN(const size_t n,
                          pipe_->WriteSome(out_, bytes.data() + pos, bytes.size() - pos));
      pos += n;
    }
    return Status::Ok();
  }

  // The next frame; kInternal if the script expected one that was never sent.
  Status Receive(Frame* f) {
    for (;;) {
      MT_ASSIGN_OR_RETURN(const bool got, decoder_.Next(f));
      if (got) return Status::Ok();
      if (pending_pos_ < pending_.size()) {
        pending_pos_ +=
            decoder_.Put(pending_.data() + pending_pos_, pending_.size() - pending_pos_);
        continue;
      }
      pending_.resize(4096);
      MT_ASSIGN_OR_RETURN(const size_t n, pipe_->ReadSome(in_, pending_.data(), pending_.size()));
      if (n == 0) return Status(Errc::kInternal, "would block: the script expected a frame");
      pending_.resize(n);
      pending_pos_ = 0;
    }
  }

 private:
  Pipe* pipe_;
  std::deque<uint8_t>* out_;
  std::deque<uint8_t>* in_;
  FrameDecoder decoder_;
  std::vector<uint8_t> pending_;
  size_t pending_pos_ = 0;
};

// The receiver's durable state: it outlives connections.
struct Store {
  uint64_t durable_seq = 0;
  std::vector<Frame> items;  // stored stream items, in seq order
  int resends_skipped = 0;
  std::map<uint32_t, DiskState> disks = {
      {0, {1 << 20, 512, proto::RESYNC_STATE_COMPLETE}},
      {1, {1 << 20, 512, proto::RESYNC_STATE_PENDING}},
  };
};

uint64_t LastSeq(const FrameHeader& h) {
  switch (h.body_case()) {
    case FrameHeader::kWriteBatch:
      return h.write_batch().writes().rbegin()->seq();
    case FrameHeader::kTag:
      return h.tag().seq();
    case FrameHeader::kResyncData:
      return h.resync_data().seq();
    case FrameHeader::kResyncComplete:
      return h.resync_complete().seq();
    default:
      return 0;
  }
}

// What the sender has to deliver: batches, a resync of disk 1, tags.
std::vector<FrameSpec> SenderItems() {
  std::vector<FrameSpec> items;
  uint64_t seq = 1;
  auto batch = [&](int count, uint32_t disk, uint64_t offset) {
    items.push_back(testing::WriteBatchFrame(seq, count, 512, disk, offset));
    seq += count;
  };
  auto tag = [&](const char* name) {
    FrameSpec f;
    f.header.mutable_tag()->set_seq(seq++);
    f.header.mutable_tag()->set_name(name);
    f.header.mutable_tag()->set_kind(proto::TAG_KIND_APP);
    items.push_back(f);
  };
  batch(2, 0, 0);
  batch(1, 0, 4096);
  FrameSpec rd;
  rd.payload = testing::Pattern(1024, 99);
  auto* d = rd.header.mutable_resync_data();
  d->set_seq(seq++);
  d->set_disk(1);
  d->set_offset(0);
  d->set_length(1024);
  d->set_crc32c(crc32c::Value(rd.payload.data(), rd.payload.size()));
  items.push_back(rd);
  batch(3, 1, 8192);
  tag("first");
  FrameSpec done;
  done.header.mutable_resync_complete()->set_seq(seq++);
  done.header.mutable_resync_complete()->set_disk(1);
  items.push_back(done);
  batch(2, 0, 65536);
  tag("second");
  return items;
}

// The receiver's side of one connection, step by step.
class ReceiverSession {
 public:
  ReceiverSession(Store* store, Endpoint* e) : store_(store), e_(e) {}

  Status OnHello() {
    Frame f;
    MT_RETURN_IF_ERROR(e_->Receive(&f));
    if (!f.header.has_hello()) return Status(Errc::kProtocol, "expected hello");
    MT_ASSIGN_OR_RETURN(version_, NegotiateVersion(f.header.hello()));
    stream_ = f.header.hello().stream_name();
    MT_ASSIGN_OR_RETURN(nonce_, RandomNonce());
    FrameHeader h;
    h.mutable_auth_challenge()->set_server_nonce(nonce_.data(), nonce_.size());
    return e_->Send(h);
  }

  Status OnAuthResponse() {
    Frame f;
    MT_RETURN_IF_ERROR(e_->Receive(&f));
    if (!f.header.has_auth_response()) return Status(Errc::kProtocol, "expected auth response");
    MT_RETURN_IF_ERROR(VerifyAuthResponse(kKey, nonce_, stream_, f.header.auth_response()));
    FrameHeader h;
    proto::Welcome* w = h.mutable_welcome();
    w->set_protocol_version(version_);
    w->set_resume_seq(store_->durable_seq);
    validator_ = StreamValidator(store_->durable_seq);
    for (const auto& [index, disk] : store_->disks) {
      MT_RETURN_IF_ERROR(validator_.AddDisk(index, disk));
      proto::DiskInfo* di = w->add_disks();
      di->set_disk(index);
      di->set_size_bytes(disk.size_bytes);
      di->set_logical_block_size(disk.logical_block_size);
      di->set_resync_state(disk.resync);
    }
    return e_->Send(h);
  }

  // A stream item: validate, store (durable at once here), acknowledge. A
  // ping: answer and report `done`.
  Status OnFrame(bool* done) {
    Frame f;
    MT_RETURN_IF_ERROR(e_->Receive(&f));
    FrameHeader reply;
    if (f.header.has_ping()) {
      reply.mutable_pong()->set_id(f.header.ping().id());
      *done = true;
      return e_->Send(reply);
    }
    Result<Verdict> v = validator_.Admit(f);
    if (!v.ok()) {
      (void)e_->Send(ErrorFrame(v.status()));
      return v.status().WithContext("receiver");
    }
    if (*v == Verdict::kStore) {
      const uint64_t last = LastSeq(f.header);
      store_->items.push_back(std::move(f));
      store_->durable_seq = last;
      store_->disks = validator_.disks();
      validator_.MarkDurable(last);
    } else {
      ++store_->resends_skipped;
    }
    reply.mutable_ack()->set_durable_seq(store_->durable_seq);
    return e_->Send(reply);
  }

 private:
  Store* store_;
  Endpoint* e_;
  uint32_t version_ = 0;
  std::string stream_;
  Nonce nonce_{};
  StreamValidator validator_;
};

// The sender's state: it outlives connections.
struct SenderState {
  std::vector<FrameSpec> items = SenderItems();
  uint64_t acked = 0;  // highest seq the receiver acknowledged
};

class SenderSession {
 public:
  SenderSession(SenderState* s, Endpoint* e) : s_(s), e_(e) {}

  Status SendHello() {
    FrameHeader h;
    proto::Hello* hello = h.mutable_hello();
    hello->set_min_version(kMinProtocolVersion);
    hello->set_max_version(kMaxProtocolVersion);
    hello->set_stream_name(kStream);
    hello->set_sender_id("exchange-test");
    return e_->Send(h);
  }

  Status OnChallenge() {
    Frame f;
    MT_RETURN_IF_ERROR(e_->Receive(&f));
    if (!f.header.has_auth_challenge()) return Status(Errc::kProtocol, "expected challenge");
    FrameHeader h;
    MT_ASSIGN_OR_RETURN(*h.mutable_auth_response(),
                        AnswerChallenge(kKey, f.header.auth_challenge(), kStream));
    return e_->Send(h);
  }

  // Reads the welcome and positions on the first item not acknowledged. The
  // sender deliberately resends from its own ack, not from resume_seq, so
  // items whose ack was lost come again and must be recognised as durable.
  Status OnWelcome() {
    Frame f;
    MT_RETURN_IF_ERROR(e_->Receive(&f));
    if (!f.header.has_welcome()) return Status(Errc::kProtocol, "expected welcome");
    if (f.header.welcome().resume_seq() < s_->acked) {
      return Status(Errc::kInternal, "an acknowledged item was lost: resume at " +
                                         std::to_string(f.header.welcome().resume_seq()) +
                                         ", acked " + std::to_string(s_->acked));
    }
    next_ = 0;
    while (next_ < s_->items.size() && LastSeq(s_->items[next_].header) <= s_->acked) ++next_;
    return Status::Ok();
  }

  bool HasMore() const { return next_ < s_->items.size(); }

  Status SendNext() {
    const FrameSpec& item = s_->items[next_++];
    return e_->Send(item.header, item.payload);
  }

  Status OnAck() {
    Frame f;
    MT_RETURN_IF_ERROR(e_->Receive(&f));
    if (f.header.has_error()) return StatusFromError(f.header.error()).WithContext("peer");
    if (!f.header.has_ack()) return Status(Errc::kProtocol, "expected ack");
    s_->acked = std::max(s_->acked, f.header.ack().durable_seq());
    return Status::Ok();
  }

  Status SendPing() {
    FrameHeader h;
    h.mutable_ping()->set_id(42);
    return e_->Send(h);
  }

  Status OnPong() {
    Frame f;
    MT_RETURN_IF_ERROR(e_->Receive(&f));
    if (!f.header.has_pong() || f.header.pong().id() != 42)
      return Status(Errc::kProtocol, "expected pong 42");
    return Status::Ok();
  }

 private:
  SenderState* s_;
  Endpoint* e_;
  size_t next_ = 0;
};

// One connection from hello to pong, both ends in turn.
Status RunConnection(SenderState* sender, Store* store, Pipe* pipe) {
  Endpoint se(pipe, &pipe->to_receiver, &pipe->to_sender);
  Endpoint re(pipe, &pipe->to_sender, &pipe->to_receiver);
  SenderSession s(sender, &se);
  ReceiverSession r(store, &re);
  MT_RETURN_IF_ERROR(s.SendHello());
  MT_RETURN_IF_ERROR(r.OnHello());
  MT_RETURN_IF_ERROR(s.OnChallenge());
  MT_RETURN_IF_ERROR(r.OnAuthResponse());
  MT_RETURN_IF_ERROR(s.OnWelcome());
  bool done = false;
  while (s.HasMore()) {
    MT_RETURN_IF_ERROR(s.SendNext());
    MT_RETURN_IF_ERROR(r.OnFrame(&done));
    MT_RETURN_IF_ERROR(s.OnAck());
  }
  MT_RETURN_IF_ERROR(s.SendPing());
  MT_RETURN_IF_ERROR(r.OnFrame(&done));
  MT_RETURN_IF_ERROR(s.OnPong());
  if (!done) return Status(Errc::kInternal, "receiver did not see the ping");
  return Status::Ok();
}

// Runs the exchange with the n-th operation failing, for n = 1, 2, ... until
// it completes without reaching n; each I/O moves 1..max_chunk bytes.
void RunWithEveryFailurePoint(size_t max_chunk) {
  const std::vector<FrameSpec> expected = SenderItems();
  uint64_t n = 1;
  int runs_with_resends = 0;
  for (;; ++n) {
    FailCount fail(n);
    std::mt19937 rng(12345);  // the same chunking for every n
    Store store;
    SenderState sender;
    int connections = 0;
    for (;;) {
      ++connections;
      Pipe pipe{&fail, &rng, max_chunk, {}, {}};
      Status s = RunConnection(&sender, &store, &pipe);
      ASSERT_LE(sender.acked, store.durable_seq) << "n=" << n;
      if (s.ok()) break;
      ASSERT_EQ(s.code(), Errc::kIoError) << "n=" << n << ": " << s.ToString();
      ASSERT_TRUE(fail.fired());
      ASSERT_LT(connections, 2) << "n=" << n << ": the retry failed too";
    }
    ASSERT_EQ(store.items.size(), expected.size()) << "n=" << n;
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_TRUE(SameFrame(store.items[i], expected[i])) << "n=" << n << " item " << i;
    }
    EXPECT_EQ(store.durable_seq, LastSeq(expected.back().header));
    EXPECT_EQ(sender.acked, store.durable_seq);
    EXPECT_EQ(store.disks.at(1).resync, proto::RESYNC_STATE_COMPLETE);
    if (store.resends_skipped > 0) ++runs_with_resends;
    if (!fail.fired()) break;  // the exchange took fewer than n operations
  }
  // Every operation of the exchange was made to fail once, and some of those
  // failures lost an ack, so resends were recognised as durable.
  ::testing::Test::RecordProperty("failure_points", static_cast<int>(n - 1));
  ::testing::Test::RecordProperty("runs_with_resends", runs_with_resends);
  EXPECT_GT(n, 20u);
  EXPECT_GT(runs_with_resends, 0);
}

TEST(FailCountExchange, NoFrameLostOrDuplicatedWithShortReadsAndWrites) {
  RunWithEveryFailurePoint(16);
}

TEST(FailCountExchange, NoFrameLostOrDuplicatedWithWholeFrames) {
  RunWithEveryFailurePoint(size_t{1} << 20);
}

}  // namespace
}  // namespace mt::stream
