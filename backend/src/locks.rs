//! Taking a mutex. Every critical section in this crate leaves its state
//! consistent at each step, so a lock poisoned by a panic elsewhere is
//! still taken rather than spreading the panic to every later caller.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
