//! Compression threads shared by every layer being written. With one layer its compressor owns its threads; with
//! many, one pool of `--threads` workers serves them all, so that threads and memory stay bounded however many
//! layers are open at once.

use std::io;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

pub struct CompressionPool {
    jobs: Option<SyncSender<Job>>,
    handles: Vec<JoinHandle<()>>,
    threads: usize,
}

impl CompressionPool {
    pub fn new(threads: usize) -> Arc<CompressionPool> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::sync_channel::<Job>(threads * 2);
        let queue = Arc::new(Mutex::new(queue));
        let handles = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        job();
                    }
                })
            })
            .collect();
        Arc::new(CompressionPool { jobs: Some(jobs), handles, threads })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on a worker; its result arrives on the returned receiver.
    pub fn submit<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> io::Result<Receiver<T>> {
        let (reply, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        match self.jobs.as_ref().map(|jobs| jobs.send(job)) {
            Some(Ok(())) => Ok(result),
            _ => Err(io::Error::other("compression worker threads stopped")),
        }
    }
}

impl Drop for CompressionPool {
    fn drop(&mut self) {
        self.jobs.take();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}
