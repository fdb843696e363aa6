#pragma once

// `UniqueFd` owns one file descriptor and closes it on destruction. It is move-only. Never let
// one be destroyed while an io_uring operation on its fd is in flight: the owner of the
// operation's `Completion` must wait for the completion first (docs/style.md §3.7).

#include <unistd.h>

#include <utility>

namespace zt {

class UniqueFd {
public:
    UniqueFd() = default;

    explicit UniqueFd(int fd) : fd_(fd) {}

    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }

    ~UniqueFd() { reset(); }

    int get() const { return fd_; }

    bool valid() const { return fd_ >= 0; }

    explicit operator bool() const { return valid(); }

    // release gives up ownership and returns the fd; this object becomes empty.
    int release() { return std::exchange(fd_, -1); }

    // reset closes the owned fd, if any, and takes ownership of `fd`.
    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace zt
