#pragma once

// `Result<T>` is the subset of C++23 `std::expected<T, Error>` this project uses, so that moving
// to C++23 later is a rename. Errors from the network and the environment are values; nothing
// here throws. Reading `value()` of a failed result (or `error()` of a good one) is a bug and
// asserts.

#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "zt/assert.h"
#include "zt/errc.h"

namespace zt {

// Error is a trivially copyable failure: a project code plus, for `Errc::sys` and friends, the
// errno that caused it (0 when there is none).
struct Error {
    Errc code = Errc::sys;
    int32_t sys_errno = 0;

    friend bool operator==(const Error&, const Error&) = default;
};

// Unexpected carries an `Error` into a `Result<T>` of any `T`, like `std::unexpected`.
struct Unexpected {
    Error error;
};

// fail builds the failure value for any `Result<T>`: `return zt::fail(Errc::timed_out);`.
inline Unexpected fail(Errc code, int32_t sys_errno = 0) {
    return Unexpected{Error{code, sys_errno}};
}

inline Unexpected fail(Error error) {
    return Unexpected{error};
}

// fail_errno builds an `Errc::sys` failure from a positive or negative errno value.
inline Unexpected fail_errno(int err) {
    return Unexpected{Error{Errc::sys, err < 0 ? -err : err}};
}

template <class T>
class [[nodiscard]] Result {
    static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");

public:
    Result(const T& value) : has_value_(true) { new (&storage_.value) T(value); }

    Result(T&& value) : has_value_(true) { new (&storage_.value) T(std::move(value)); }

    template <class U>
        requires(std::is_constructible_v<T, U &&> && !std::is_same_v<std::decay_t<U>, T> &&
                 !std::is_same_v<std::decay_t<U>, Unexpected> &&
                 !std::is_same_v<std::decay_t<U>, Result>)
    Result(U&& value) : has_value_(true) {
        new (&storage_.value) T(std::forward<U>(value));
    }

    Result(Unexpected failure) : has_value_(false) { storage_.error = failure.error; }

    Result(const Result& other) : has_value_(other.has_value_) {
        if (has_value_) {
            new (&storage_.value) T(other.storage_.value);
        } else {
            storage_.error = other.storage_.error;
        }
    }

    Result(Result&& other) noexcept : has_value_(other.has_value_) {
        if (has_value_) {
            new (&storage_.value) T(std::move(other.storage_.value));
        } else {
            storage_.error = other.storage_.error;
        }
    }

    Result& operator=(Result other) noexcept {
        destroy();
        has_value_ = other.has_value_;
        if (has_value_) {
            new (&storage_.value) T(std::move(other.storage_.value));
        } else {
            storage_.error = other.storage_.error;
        }
        return *this;
    }

    ~Result() { destroy(); }

    bool has_value() const { return has_value_; }

    explicit operator bool() const { return has_value_; }

    T& value() & {
        ZT_ASSERT(has_value_);
        return storage_.value;
    }

    const T& value() const& {
        ZT_ASSERT(has_value_);
        return storage_.value;
    }

    T&& value() && {
        ZT_ASSERT(has_value_);
        return std::move(storage_.value);
    }

    T& operator*() & { return value(); }

    const T& operator*() const& { return value(); }

    T&& operator*() && { return std::move(*this).value(); }

    T* operator->() { return &value(); }

    const T* operator->() const { return &value(); }

    // value_or returns the value, or `fallback` when this holds an error.
    template <class U>
    T value_or(U&& fallback) const& {
        return has_value_ ? storage_.value : static_cast<T>(std::forward<U>(fallback));
    }

    const Error& error() const {
        ZT_ASSERT(!has_value_);
        return storage_.error;
    }

private:
    void destroy() {
        if (has_value_) {
            storage_.value.~T();
        }
    }

    union Storage {
        Storage() {}

        ~Storage() {}

        T value;
        Error error;
    } storage_;

    bool has_value_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;

    Result(Unexpected failure) : has_value_(false), error_(failure.error) {}

    bool has_value() const { return has_value_; }

    explicit operator bool() const { return has_value_; }

    void value() const { ZT_ASSERT(has_value_); }

    const Error& error() const {
        ZT_ASSERT(!has_value_);
        return error_;
    }

private:
    bool has_value_ = true;
    Error error_{};
};

// ok returns a successful `Result<void>`.
inline Result<void> ok() {
    return {};
}

}  // namespace zt
