//! NVIDIA GPUs through burn's CUDA backend (a build with `--features cuda`). burn opens the
//! driver lazily and panics deep inside a kernel launch when there is none; this module asks
//! the driver first, so `device "cuda"` on a machine without a GPU fails at the stage's start
//! with a message saying what is missing.

use cudarc::driver::{result, sys};

/// The GPU's driver handle, after checking that the driver loads and that GPU `ordinal`
/// exists.
fn handle(ordinal: usize) -> Result<sys::CUdevice, String> {
    // SAFETY: only tries to dlopen libcuda; nothing is called through it here.
    if !unsafe { sys::is_culib_present() } {
        return Err(
            "device \"cuda\": no NVIDIA driver here (libcuda.so does not load); run on a \
                    machine with an NVIDIA GPU and its driver, or use device \"cpu\""
                .into(),
        );
    }
    result::init()
        .map_err(|e| format!("device \"cuda\": the NVIDIA driver does not start: {e}"))?;
    let count = result::device::get_count().unwrap_or(0).max(0) as usize;
    if ordinal >= count {
        let visible = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into());
        return Err(format!(
            "device \"cuda\": GPU {ordinal} is not there: the driver sees {count} GPU(s) \
             (CUDA_VISIBLE_DEVICES={visible}); pass --gpus N with at most {count}"
        ));
    }
    result::device::get(ordinal as i32).map_err(|e| format!("device \"cuda\": GPU {ordinal}: {e}"))
}

/// burn's CUDA device for GPU `ordinal`, once the driver says it is there.
pub fn open(ordinal: usize) -> Result<burn::tensor::Device, String> {
    handle(ordinal)?;
    Ok(burn::tensor::Device::cuda(ordinal))
}

/// One line about GPU `ordinal`: its name, memory and the driver's CUDA version.
pub fn describe(ordinal: usize) -> Result<String, String> {
    let dev = handle(ordinal)?;
    let name = result::device::get_name(dev).unwrap_or_else(|_| "unknown GPU".into());
    // SAFETY: `dev` is a valid device handle from `handle`.
    let memory = unsafe { result::device::total_mem(dev) }.unwrap_or(0);
    let mut version = 0;
    // SAFETY: writes one int.
    unsafe { sys::cuDriverGetVersion(&mut version) };
    Ok(format!(
        "GPU {ordinal}: {name}, {:.1} GiB, driver CUDA {}.{}",
        memory as f64 / (1u64 << 30) as f64,
        version / 1000,
        (version % 1000) / 10
    ))
}
