//! What a transaction holds in the backend until it ends (change events to send, rows for the
//! upkeep of derived tables), each item tagged with the subtransaction that made it, so a
//! savepoint rolled back takes its items, and those of the savepoints inside it, with it.

/// Items in the order they were made, each with its subtransaction's number.
pub struct BySubtransaction<T> {
    items: Vec<(u32, T)>,
}

impl<T> Default for BySubtransaction<T> {
    fn default() -> Self {
        BySubtransaction { items: Vec::new() }
    }
}

impl<T> BySubtransaction<T> {
    pub fn push(&mut self, subtransaction: u32, item: T) {
        self.items.push((subtransaction, item));
    }

    /// The last item, if subtransaction `subtransaction` made it (to add to it rather than push).
    pub fn last_of(&mut self, subtransaction: u32) -> Option<&mut T> {
        match self.items.last_mut() {
            Some((made_in, item)) if *made_in == subtransaction => Some(item),
            _ => None,
        }
    }

    /// Forgets what subtransaction `subtransaction` and the ones inside it made (it rolled back).
    /// Subtransactions are numbered in the order they start, so those are the numbers from it on.
    pub fn roll_back(&mut self, subtransaction: u32) {
        self.items.retain(|(made_in, _)| *made_in < subtransaction);
    }

    /// Takes out the items `wanted` picks among those subtransaction `subtransaction` and the
    /// ones inside it made, in their order; the others stay (an outer subtransaction's items are
    /// not taken inside a savepoint that may still roll back).
    pub fn take(&mut self, subtransaction: u32, wanted: impl Fn(&T) -> bool) -> Vec<T> {
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|(made_in, item)| *made_in >= subtransaction && wanted(item));
        self.items = kept;
        taken.into_iter().map(|(_, item)| item).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, item)| item)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolled_back_savepoint_takes_its_items_and_its_inner_ones() {
        let mut held = BySubtransaction::default();
        held.push(1, 'a');
        held.push(2, 'b');
        held.push(3, 'c');
        held.push(1, 'd');
        held.roll_back(2);
        assert_eq!(held.iter().collect::<String>(), "ad");
        held.roll_back(1);
        assert!(held.is_empty());
    }

    #[test]
    fn only_the_same_subtransaction_adds_to_the_last_item() {
        let mut held = BySubtransaction::default();
        held.push(1, vec![1]);
        assert!(held.last_of(2).is_none());
        if let Some(last) = held.last_of(1) {
            last.push(2);
        }
        assert_eq!(held.iter().next(), Some(&vec![1, 2]));
    }

    #[test]
    fn take_keeps_the_rest_in_order() {
        let mut held = BySubtransaction::default();
        for (sub, n) in [(1, 1), (1, 2), (2, 3), (2, 4)] {
            held.push(sub, n);
        }
        assert_eq!(held.take(1, |n| n % 2 == 0), [2, 4]);
        assert_eq!(held.iter().copied().collect::<Vec<_>>(), [1, 3]);
        assert_eq!(held.len(), 2);
    }

    #[test]
    fn inside_a_savepoint_take_leaves_the_outer_items() {
        let mut held = BySubtransaction::default();
        for (sub, n) in [(1, 1), (2, 2), (3, 3)] {
            held.push(sub, n);
        }
        assert_eq!(held.take(2, |_| true), [2, 3]);
        assert_eq!(held.iter().copied().collect::<Vec<_>>(), [1]);
    }
}
