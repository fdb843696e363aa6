#pragma once

// OwnedSet<T> owns a set of heap objects whose addresses others hold (a pod's connections, links
// and tunnels): `adopt` takes one in, `destroy` frees it, and nothing else does. It is an
// intrusive list: a member carries its own two links (it derives from `OwnedSet<T>::Member`), so
// owning it costs 16 bytes in the object and no allocation of its own, which matters at tens of
// thousands of idle tunnels. Iteration goes over a copy of the members (`members`), so acting on
// one may add or destroy others safely.

#include <cstddef>
#include <memory>
#include <vector>

#include "zt/assert.h"

namespace zt::proxy {

template <class T>
class OwnedSet {
public:
    // Member is the part of a `T` the set uses; `T` derives from it.
    class Member {
    private:
        friend class OwnedSet;
        T* previous_ = nullptr;
        T* next_ = nullptr;
    };

    OwnedSet() = default;
    OwnedSet(const OwnedSet&) = delete;
    OwnedSet& operator=(const OwnedSet&) = delete;

    ~OwnedSet() {
        while (head_ != nullptr) {
            destroy(*head_);
        }
    }

    // adopt takes ownership of `item` and returns it.
    T& adopt(std::unique_ptr<T> item) {
        T* raw = item.release();
        Member& member = *raw;
        member.next_ = head_;
        if (head_ != nullptr) {
            static_cast<Member&>(*head_).previous_ = raw;
        }
        head_ = raw;
        size_++;
        return *raw;
    }

    // destroy frees `item`, which must be a member.
    void destroy(T& item) {
        Member& member = item;
        if (member.previous_ != nullptr) {
            static_cast<Member&>(*member.previous_).next_ = member.next_;
        } else {
            ZT_ASSERT(head_ == &item);
            head_ = member.next_;
        }
        if (member.next_ != nullptr) {
            static_cast<Member&>(*member.next_).previous_ = member.previous_;
        }
        size_--;
        std::unique_ptr<T> owned(&item);
    }

    // members returns the current members, a copy the caller may act on freely.
    std::vector<T*> members() const {
        std::vector<T*> out;
        out.reserve(size_);
        for (T* item = head_; item != nullptr; item = static_cast<Member&>(*item).next_) {
            out.push_back(item);
        }
        return out;
    }

    // for_each calls `fn(const T&)` on every member; `fn` must not add or destroy members.
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (const T* item = head_; item != nullptr;
             item = static_cast<const Member&>(*item).next_) {
            fn(*item);
        }
    }

    size_t size() const { return size_; }

    bool empty() const { return head_ == nullptr; }

private:
    T* head_ = nullptr;
    size_t size_ = 0;
};

}  // namespace zt::proxy
