use clap::Parser;

fn main() {
    let cli = edgeup::cli::Cli::parse();
    let json = cli.json;
    let code = match edgeup::app::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let code = edgeup::exit::code_of(&error);
            if json {
                let line = serde_json::json!({
                    "event": "error",
                    "exit_code": code,
                    "message": format!("{error:#}"),
                });
                edgeup::outln!("{line}");
            }
            eprintln!("edgeup: {error:#}");
            code
        }
    };
    std::process::exit(code);
}
