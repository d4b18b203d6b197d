//! `BPF_PROG_TEST_RUN` of the loaded programs on crafted frames: what the kernel tests
//! and the benchmark drive the dataplane with. Compiled only with the `test-run`
//! feature (the `ward-tests` crate enables it), never into the shipped `ward`.
use aya::programs::{ProgramError, SchedClassifier, TestRun, TestRunOptions, Xdp};
use ward_common::program_names;

use super::{Dataplane, DataplaneError};

impl Dataplane {
    /// Runs the XDP program `repeat` times on `frame` (`BPF_PROG_TEST_RUN`); returns its
    /// action and the mean time per run.
    pub fn test_run_xdp(
        &self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), DataplaneError> {
        self.test_run::<Xdp>(program_names::XDP_INGRESS, frame, repeat)
    }

    /// Runs the TC program once on `frame`; returns its action.
    pub fn test_run_tc(&self, frame: &[u8]) -> Result<u32, DataplaneError> {
        Ok(self
            .test_run::<SchedClassifier>(program_names::TC_EGRESS, frame, 1)?
            .0)
    }

    fn test_run<'a, P>(
        &'a self,
        name: &'static str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), DataplaneError>
    where
        P: for<'o> TestRun<Opts<'o> = TestRunOptions<'o>, Result = aya::programs::TestRunResult>
            + 'a,
        &'a P: TryFrom<&'a aya::programs::Program, Error = ProgramError>,
    {
        let program: &P = self
            .ebpf
            .program(name)
            .ok_or(DataplaneError::Missing(name))?
            .try_into()
            .map_err(|source| DataplaneError::Program { name, source })?;
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::new()
        };
        let r = program
            .test_run(opts)
            .map_err(|source| DataplaneError::Program { name, source })?;
        Ok((r.return_value, r.duration))
    }
}
