use clap::Parser;

fn main() {
    let cli = edgeup::cli::Cli::parse();
    let json = cli.json;
    let code = match edgeup::app::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let code = edgeup::exit::code_of(&error);
            if json {
                use edgeup::report::{Event, Line, json};
                json::write(&Line::new(Event::Error {
                    exit_code: code,
                    message: format!("{error:#}"),
                }));
            }
            eprintln!("edgeup: {error:#}");
            code
        }
    };
    std::process::exit(code);
}
