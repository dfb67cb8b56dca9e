// TlsChannel: TLS over one TCP socket, with OpenSSL reading and writing
// ciphertext through a BIO of our own, so that many TLS records move in one
// system call.
//
// Why not boost::asio::ssl::stream: it passes ciphertext through a 17 KiB
// BIO pair, so every 16 KiB record costs one send() or recv() and, on the
// sending side, one trip through the reactor (an epoll_wait). On the change
// stream's bulk transfers those calls were a large share of the sender's and
// the receiver's CPU (docs/benchmarks.md, "Resync against dd and rsync").
// Here a write encrypts the whole plaintext into blocks of ours and sends
// them in as few calls as the socket takes; a read lets OpenSSL receive
// straight into its read buffer, read-ahead on, so one recv() takes up to
// a read buffer's worth of records (256 KiB; one record's worth before the
// peer is authenticated: SetReceiveChunk) and no copy is made in between.
//
// Contract:
// - Every call, and every handler, runs on the executor given to Create (a
//   strand, or a single-threaded io_context). Not thread-safe otherwise.
// - At most one read (AsyncReadSome or ReadSome) at a time. Writes may be
//   outstanding in any number: each is encrypted when called and completes,
//   in call order, once its last byte has been handed to the socket. Output
//   OpenSSL produces while reading (a KeyUpdate answer) is queued the same way.
// - A handler is never invoked from inside the call that starts it.
// - Pending operations keep the channel alive (it is held by shared_ptr).
// - End of stream: boost::asio::error::eof after the peer's close_notify,
//   boost::asio::ssl::error::stream_truncated at a TCP EOF without one.
// - Memory: the ciphertext blocks to send are taken when written and given
//   back once sent (large ones come from shim::BlockCache and are reused),
//   and OpenSSL's read buffer is kept at SetReceiveChunk's size (256 KiB by
//   default) for the connection's life; with SetReceiveChunk(0) it is one
//   record's worth, given back whenever it is empty.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/version.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "mt/shim/aligned_buffer.h"

#if BOOST_VERSION >= 107400
#include <boost/asio/any_io_executor.hpp>
#else
#include <boost/asio/executor.hpp>
#endif

namespace mt::net {

class TlsChannel : public std::enable_shared_from_this<TlsChannel> {
 public:
#if BOOST_VERSION >= 107400
  using Executor = boost::asio::any_io_executor;
#else
  using Executor = boost::asio::executor;
#endif
  using ErrorCode = boost::system::error_code;
  using DoneHandler = std::function<void(const ErrorCode&)>;
  using IoHandler = std::function<void(const ErrorCode&, size_t)>;
  // Called for each certificate of the peer's chain, leaf last (OpenSSL's
  // verify callback): returns whether to go on.
  using VerifyFn = std::function<bool(bool preverified, X509_STORE_CTX* store)>;

  // Ciphertext received per system call at most (a TLS record is ~16 KiB).
  static constexpr size_t kDefaultReceiveChunk = 256 * 1024;

  // The socket is opened on ioc; handlers run on `handlers`. REQUIRES: ioc
  // and ssl outlive the channel.
  static std::shared_ptr<TlsChannel> Create(boost::asio::io_context& ioc, Executor handlers,
                                            boost::asio::ssl::context& ssl);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  boost::asio::ip::tcp::socket& socket() { return socket_; }
  SSL* native_handle() { return ssl_; }
  // Peer verification (a client pinning the server's certificate). Before
  // AsyncHandshake.
  void SetVerify(VerifyFn fn);
  // Size of OpenSSL's read buffer, i.e. ciphertext taken per recv() at most;
  // larger than a record: kept for the connection's life. 0: OpenSSL's
  // default, one record, given back whenever empty (before a peer is
  // authenticated: it bounds the memory an unauthenticated peer holds).
  void SetReceiveChunk(size_t bytes);

  // The TLS handshake on a connected socket; puts the socket in non-blocking
  // mode. Completes once our last handshake bytes are sent.
  void AsyncHandshake(bool server, DoneHandler done);
  // Reads plaintext: completes with at least one byte, or an error.
  void AsyncReadSome(boost::asio::mutable_buffer into, IoHandler done);
  // Reads plaintext without waiting: from records already received, else
  // one non-blocking receive. Nothing available: ec = would_block.
  // Returns at most one record's plaintext (16 KiB).
  size_t ReadSome(boost::asio::mutable_buffer into, ErrorCode& ec);
  // Writes all of `from` (the caller keeps it alive only until this call
  // returns: it is encrypted at once). Completes when it has been sent.
  void AsyncWrite(boost::asio::const_buffer from, IoHandler done);
  // The same for pieces written one after the other (a frame's header and
  // its payload slices, without gathering them first).
  void AsyncWrite(const std::vector<boost::asio::const_buffer>& pieces, IoHandler done);

  // Memory of this channel's own ciphertext blocks (encrypted, not yet sent),
  // capacity included — for tests and memory accounting. OpenSSL's state
  // and its read buffer are not counted.
  size_t buffer_bytes() const;
  // System calls that received ciphertext, and sends started (each one
  // asio::async_write of everything queued) — for tests and benchmarks.
  uint64_t receive_calls() const { return receive_calls_; }
  uint64_t sends() const { return sends_; }

 private:
  using Bytes = std::vector<uint8_t, PageAlignedAllocator<uint8_t>>;

  TlsChannel(boost::asio::io_context& ioc, Executor handlers, boost::asio::ssl::context& ssl);
  void StepHandshake();
  // Sends what OpenSSL has written (out_), unless a send is in flight;
  // `then` runs once everything written so far has been sent.
  void Flush(DoneHandler then = nullptr);
  void OnSent(const ErrorCode& ec);
  // Encrypts into out_; false with ec on an OpenSSL error.
  bool Encrypt(const uint8_t* p, size_t n, ErrorCode& ec);
  ErrorCode LastSslError(int ssl_error) const;

  static int BioWrite(BIO* bio, const char* data, int len);
  static int BioRead(BIO* bio, char* data, int len);
  static long BioCtrl(BIO* bio, int cmd, long num, void* ptr);  // NOLINT: OpenSSL's signature
  static BIO_METHOD* Method();

  boost::asio::ip::tcp::socket socket_;
  Executor handlers_;
  SSL* ssl_ = nullptr;
  VerifyFn verify_;

  bool peer_eof_ = false;     // the peer closed its side (TCP EOF)
  ErrorCode receive_error_;   // a receive failed with this

  // Ciphertext OpenSSL wrote (out_) and the part being sent (sending_);
  // byte counts since the start, and who waits for which count to be sent.
  std::vector<Bytes> out_, sending_;
  size_t write_hint_ = 0;  // bytes the write being encrypted will add
  uint64_t receive_calls_ = 0, sends_ = 0;
  bool send_in_flight_ = false;
  ErrorCode send_error_;
  uint64_t encrypted_ = 0, sent_ = 0;
  struct Waiter {
    uint64_t until;  // sent_ at least this
    DoneHandler fn;
  };
  std::deque<Waiter> on_sent_;

  DoneHandler handshake_done_;
};

}  // namespace mt::net
