//! Used by the code `#[controller]` generates; not a public API.
//!
//! The macro names each argument's and the return type's own type, so it can ask of each
//! whether it describes itself: `(&&Probe::<T>::new()).describe_input(op)` calls
//! [`DescribeInput`] when `T` implements it (the method on `&Probe<T>` is found first) and
//! leaves `op` as it is otherwise (the method on `Probe<T>`). A controller whose types have no
//! schema still compiles; its routes are described by their path and kind.

use std::marker::PhantomData;

use super::{DescribeInput, DescribeOutput, Operation};

/// A type, asked whether it describes itself.
#[derive(Debug)]
pub struct Probe<T: ?Sized>(PhantomData<fn() -> PhantomData<T>>);

impl<T: ?Sized> Probe<T> {
    /// The probe of `T`.
    #[allow(clippy::new_without_default, reason = "made by generated code only")]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Found second: `T` does not describe itself as an extractor.
pub trait NotDescribedInput {
    /// Leaves `op` as it is.
    fn describe_input(&self, op: Operation) -> Operation {
        op
    }
}

/// Found second: `T` does not describe itself as a response.
pub trait NotDescribedOutput {
    /// Leaves `op` as it is.
    fn describe_output(&self, op: Operation) -> Operation {
        op
    }
}

impl<T: ?Sized> NotDescribedInput for Probe<T> {}
impl<T: ?Sized> NotDescribedOutput for Probe<T> {}

/// As an extractor.
pub trait DescribedInput {
    /// `T`'s description as an extractor.
    fn describe_input(&self, op: Operation) -> Operation;
}

/// As a response.
pub trait DescribedOutput {
    /// `T`'s description as a response.
    fn describe_output(&self, op: Operation) -> Operation;
}

impl<T: DescribeInput> DescribedInput for &Probe<T> {
    fn describe_input(&self, op: Operation) -> Operation {
        T::describe_input(op)
    }
}

impl<T: DescribeOutput> DescribedOutput for &Probe<T> {
    fn describe_output(&self, op: Operation) -> Operation {
        T::describe_output(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Query;

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code, reason = "only its schema is used")]
    struct Page {
        page: u32,
    }

    #[allow(dead_code, reason = "only its lack of a schema is used")]
    struct NoSchema;

    #[test]
    #[allow(
        clippy::needless_borrow,
        reason = "the borrows choose the method, as in the generated code"
    )]
    fn probes_pick_the_description_when_there_is_one() {
        let op = (&&Probe::<Query<Page>>::new()).describe_input(Operation::default());
        assert_eq!(op.__parameter_count(), 1);
        let op = (&&Probe::<Query<NoSchema>>::new()).describe_input(Operation::default());
        assert_eq!(op.__parameter_count(), 0);
    }
}
