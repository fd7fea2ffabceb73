fn main() {
    let p = std::env::args().nth(1).unwrap();
    std::fs::write(format!("{p}.probe"), vec![0u8; 4096]).unwrap();
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(1<<20).make().unwrap();
    ex.run(async move {
        let pf = glommio::io::DmaFile::open(format!("{p}.probe")).await.unwrap();
        let _ = pf.read_at_aligned(0, 4096).await.unwrap();
        let f = glommio::io::OpenOptions::new().read(true).write(true).create(true).dma_open(&p).await.unwrap();
        let mut b = f.alloc_dma_buffer(4096);
        b.as_bytes_mut().fill(7);
        f.write_at(b, 0).await.unwrap();
        f.fdatasync().await.unwrap();
        let r = f.read_at_aligned(0, 4096).await.unwrap();
        let r2 = f.read_at(10, 100).await.unwrap();
        println!("ok {} {}", r[0], r2.len());
    });
}
