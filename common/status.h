// Status and Result<T>: errors as values.
//
// A Status is a code from a closed set plus a human-readable message. Each
// layer that passes an error up adds its own context with Annotate(), so the
// message reads outermost-first: "create sandbox default/a: runsc create:
// exit 1: ...". The HTTP layer maps codes to status codes in one place
// (daemon/http_status.cc); nothing else decides HTTP codes.
//
// Thread safety: values; copy freely.
#ifndef SBX_COMMON_STATUS_H_
#define SBX_COMMON_STATUS_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sbx {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // malformed input (bad JSON/YAML, unknown field, bad query)
  kInvalid,             // well-formed input that fails validation (field errors)
  kNotFound,
  kAlreadyExists,
  kConflict,            // stale resourceVersion, concurrent modification
  kFailedPrecondition,  // operation not allowed in the current state
  kGone,                // resourceVersion too old for a watch
  kTooLarge,            // request body or manifest over the limit
  kUnavailable,         // transient: try again later
  kInternal,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message".
  Status Annotate(std::string_view context) const;

  // "NotFound: message" (or "OK").
  std::string ToString() const;

  bool operator==(const Status& other) const = default;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status Invalid(std::string m) { return Status(Code::kInvalid, std::move(m)); }
inline Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
inline Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
inline Status Conflict(std::string m) { return Status(Code::kConflict, std::move(m)); }
inline Status FailedPrecondition(std::string m) {
  return Status(Code::kFailedPrecondition, std::move(m));
}
inline Status Gone(std::string m) { return Status(Code::kGone, std::move(m)); }
inline Status TooLarge(std::string m) { return Status(Code::kTooLarge, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }

// Internal(strerror(errno)) with context, for failed system calls.
Status ErrnoStatus(std::string_view context, int err);

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) std::abort();  // a Result never holds OK without a value
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sbx

#define SBX_CONCAT_INNER_(a, b) a##b
#define SBX_CONCAT_(a, b) SBX_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define SBX_RETURN_IF_ERROR(expr)             \
  do {                                        \
    ::sbx::Status sbx_status_ = (expr);       \
    if (!sbx_status_.ok()) return sbx_status_; \
  } while (0)

// SBX_ASSIGN_OR_RETURN(auto x, FunctionReturningResult());
#define SBX_ASSIGN_OR_RETURN(lhs, expr) \
  SBX_ASSIGN_OR_RETURN_IMPL_(SBX_CONCAT_(sbx_result_, __LINE__), lhs, expr)
#define SBX_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

// For bugs only: crashes with a message. Environment failures are Status values.
#define SBX_CHECK(cond)                                                          \
  do {                                                                           \
    if (!(cond)) ::sbx::internal::CheckFailed(__FILE__, __LINE__, #cond);        \
  } while (0)

namespace sbx::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}

#endif  // SBX_COMMON_STATUS_H_
