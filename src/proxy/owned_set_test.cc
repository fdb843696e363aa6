// Tests for owned_set.h: members are owned (freed by `destroy` or with the set), unlinked from
// any position, and listed by a copy that stays valid while members are destroyed.

#include "src/proxy/owned_set.h"

#include <doctest/doctest.h>

namespace {

struct Item : zt::proxy::OwnedSet<Item>::Member {
    explicit Item(int v, int* alive_count) : value(v), alive(alive_count) { ++*alive; }

    ~Item() { --*alive; }

    int value;
    int* alive;
};

}  // namespace

TEST_CASE("owned_set: adopt, destroy from any position, free the rest with the set") {
    int alive = 0;
    {
        zt::proxy::OwnedSet<Item> set;
        Item& a = set.adopt(std::make_unique<Item>(1, &alive));
        Item& b = set.adopt(std::make_unique<Item>(2, &alive));
        Item& c = set.adopt(std::make_unique<Item>(3, &alive));
        CHECK(set.size() == 3);
        set.destroy(b);  // the middle
        CHECK(alive == 2);
        int sum = 0;
        set.for_each([&sum](const Item& item) { sum += item.value; });
        CHECK(sum == 4);
        for (Item* item : set.members()) {  // destroying while walking a copy
            set.destroy(*item);
        }
        CHECK(set.empty());
        CHECK(alive == 0);
        (void)a;
        (void)c;
        set.adopt(std::make_unique<Item>(4, &alive));
        set.adopt(std::make_unique<Item>(5, &alive));
    }
    CHECK(alive == 0);
}
